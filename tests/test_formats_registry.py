"""The format registry: detection by content then by name, and bounded reads of regular files only."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mixinfer import formats
from mixinfer.errors import TokenizerError, TokenizerNotFoundError
from mixinfer.formats import files
from mixinfer.tokenizer import BPETokenizer, load_tokenizer


def ranks_file(path: Path, tokens: list[bytes]) -> Path:
    """A tiktoken ranks file: the 256 bytes, then ``tokens`` in order."""
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    lines += [f"{base64.b64encode(t).decode()} {256 + i}" for i, t in enumerate(tokens)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


TOKENS = [b"th", b"the", b" the", b"in", b"ing"]


@pytest.mark.parametrize("name", ["tokenizer.model", "ranks.txt", "ranks", "vocab.bin", "x.json"])
def test_tiktoken_ranks_are_recognised_by_content_under_any_name(name: str, tmp_path: Path) -> None:
    tok = load_tokenizer(ranks_file(tmp_path / name, TOKENS))
    assert tok.format == "tiktoken-file"
    assert tok.merges == [(b"t", b"h"), (b"th", b"e"), (b" ", b"the"), (b"i", b"n"), (b"in", b"g")]


def test_every_format_sniffs_only_its_own_content(small_bpe_tokenizer_json: Path, tmp_path: Path) -> None:
    heads = {
        "tokenizer.json": small_bpe_tokenizer_json.read_bytes()[:4096],
        "tiktoken-file": ranks_file(tmp_path / "r", TOKENS).read_bytes(),
        "tekken": b'{"config": {"pattern": "x", "default_vocab_size": 300}, "vocab": [{"rank": 0, '
        b'"token_bytes": "AA=="}]}',
        "sentencepiece": b"\x0a\x0c\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02",
        "merges.txt": b"#version: 0.2\n\xc4\xa0 t\n",
    }
    for fmt in formats.FORMATS:
        for owner, head in heads.items():
            claimed = fmt.sniff(tmp_path / "x", head)
            if owner == fmt.name:
                assert claimed, (fmt.name, owner)
            elif claimed:
                # Only the JSON fallback may also accept a Tekken head: Tekken is tried first.
                assert (fmt.name, owner) == ("tokenizer.json", "tekken")
    assert [f.name for f in formats.FORMATS].index("tekken") < [f.name for f in formats.FORMATS].index(
        "tokenizer.json"
    )


def test_a_registered_format_is_used(tmp_path: Path) -> None:
    class Upper:
        name = "upper-test"
        suffixes: tuple[str, ...] = (".upper",)

        def sniff(self, path: Path, head: bytes) -> bool:
            return head.startswith(b"UPPER")

        def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
            from mixinfer.pretokenizers import PRESETS

            return BPETokenizer(source, [(b"A", b"B")], True, PRESETS["gpt2"], format=self.name)

        def load(self, path: Path, source: str) -> BPETokenizer:
            return self.parse(files.read_bytes(path), source=source, where=str(path))

    fmt = Upper()
    assert isinstance(fmt, formats.FileFormat)
    formats.register(fmt, first=True)
    try:
        path = tmp_path / "t"
        path.write_bytes(b"UPPER\n")
        assert load_tokenizer(path).format == "upper-test"
    finally:
        formats.FORMATS.remove(fmt)


def test_unrecognised_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TokenizerError, match="not a tokenizer file mixinfer recognises"):
        load_tokenizer(path)


# --------------------------------------------------------------------------------------------------
# Regular files only, bounded (issue 17 item 6)


def test_a_character_device_is_refused_without_reading() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(TokenizerError, match="character device, not a tokenizer file"):
        load_tokenizer("/dev/zero")


def test_a_fifo_is_refused_and_never_opened_for_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "tokenizer.json"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []
    opened: list[str] = []
    real_open = os.open

    def spy(path: object, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))  # type: ignore[arg-type]
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)

    def attempt() -> None:
        try:
            load_tokenizer(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            result.append(exc)
        else:
            result.append(None)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():
        # Unblock the reader so the thread ends, then fail: loading waited on the FIFO.
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert isinstance(result[0], TokenizerError) and "FIFO" in str(result[0])
    assert str(fifo) not in opened


def test_a_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "tokenizer.json"
    with open(big, "wb") as fh:
        fh.truncate(files.MAX_TOKENIZER_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(TokenizerError, match="larger than the 1 GiB"):
        load_tokenizer(big)


def test_a_file_growing_past_the_cap_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ranks_file(tmp_path / "r.tiktoken", TOKENS)
    monkeypatch.setattr(files, "MAX_TOKENIZER_BYTES", 100)  # smaller than the file, checked twice
    with pytest.raises(TokenizerError, match="larger than"):
        files.read_bytes(path)


def test_a_directory_without_tokenizer_files_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(TokenizerNotFoundError) as info:
        load_tokenizer(tmp_path)
    message = str(info.value)
    assert "tokenizer.json" in message and "tokenizer.model" in message and "notes.md" in message


def test_a_directory_with_one_tiktoken_file_or_a_tokenizer_model(tmp_path: Path) -> None:
    ranks_file(tmp_path / "enc.tiktoken", TOKENS)
    assert load_tokenizer(tmp_path).format == "tiktoken-file"
    other = tmp_path / "llama"
    other.mkdir()
    shutil.copy(tmp_path / "enc.tiktoken", other / "tokenizer.model")
    assert len(load_tokenizer(other).merges) == len(TOKENS)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_cli_exits_3_quickly_on_a_device_or_fifo(target: str, tmp_path: Path) -> None:
    if target == "fifo":
        path = tmp_path / "tok.json"
        os.mkfifo(path)
        target = str(path)
    elif not Path(target).exists():
        pytest.skip("no /dev/zero")
    proc = subprocess.run(
        [sys.executable, "-m", "mixinfer.cli", "infer", target],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 3, proc.stderr
    assert "not a tokenizer file" in proc.stderr and "Traceback" not in proc.stderr
