"""Defects a second hands-on review found (intervals that could not vary, outputs read back as
samples, one folder read two ways, stale warnings from the cache), each pinned down."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from cli_helpers import cli, infer_args

from mixinfer import errors
from mixinfer.sample_commands import pull_samples


@pytest.fixture
def samples(three_categories: Path, tmp_path: Path) -> Path:
    """A private copy of the three small categories (en, de, fr), which tests may change."""
    return Path(shutil.copytree(three_categories, tmp_path / "samples"))


def test_outputs_may_not_land_in_a_folder_a_manifest_names_by_file_url(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """``url: file://...`` folders are read recursively: a snapshot or a result written there was
    read back as part of the category (exit 0, a different answer on the next run)."""
    manifest = tmp_path / "m.json"
    sources = {"en": {"url": (samples / "en").as_uri()}, "de": {"path": str(samples / "de")}}
    manifest.write_text(json.dumps({"categories": {c: {"sources": [s]} for c, s in sources.items()}}))
    inside = samples / "en" / "r.json"
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, manifest, tmp_path, "-o", str(inside)))
    assert code == 2 and "inside the samples folder" in err and not inside.exists(), err
    with pytest.raises(errors.UsageError, match="inside .* which this pull reads"):
        pull_samples(str(manifest), samples / "en" / "snap", max_bytes=20_000)
    assert sorted(p.name for p in (samples / "en").iterdir()) == ["t.txt"]


def test_a_folder_reads_the_same_files_as_a_directory_or_through_a_manifest(
    samples: Path, tmp_path: Path
) -> None:
    """``--samples DIR`` and a manifest ``path: DIR`` skipped ``.zst`` files that a ``url:`` or a
    glob read: one folder, two answers, both with exit 0."""
    zstandard = pytest.importorskip("zstandard")
    from mixinfer.sources import iter_documents, open_samples

    (samples / "en" / "more.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(b"zstd text " * 300))
    by_path = tmp_path / "path.json"
    by_path.write_text(json.dumps({"categories": {"en": {"sources": [{"path": str(samples / "en")}]}}}))
    by_url = tmp_path / "url.json"
    by_url.write_text(json.dumps({"categories": {"en": {"sources": [{"url": (samples / "en").as_uri()}]}}}))

    def read(spec: Path) -> list[str]:
        (en,) = [c for c in open_samples(str(spec)).categories() if c.name == "en"]
        assert not any("not a sample file type" in s for s in en.skipped), en.skipped
        return list(iter_documents(en))

    docs = read(samples)
    assert len(docs) == 2 and "zstd text " * 300 in docs
    assert read(by_path) == read(by_url) == docs


def _read_fifo(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(fifo, "rb") as fh:
            into.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_an_output_that_is_a_pipe_or_device_is_written_to_not_replaced(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """The atomic write renamed a file over it: run as root, ``-o /dev/null`` turned /dev/null
    into a regular file for the whole machine."""
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", str(fifo)))
    reader.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["proportions"].keys() == {"en", "de", "fr"}
    # The picture too.
    pytest.importorskip("matplotlib")
    report = tmp_path / "r.csv"
    code, _, err = cli("audit", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                       "--no-cache", "-q", "-o", str(report))  # fmt: skip
    assert code == 0, err
    picture = tmp_path / "p.png"
    os.mkfifo(picture)
    reader = _read_fifo(picture, got)
    code, _, err = cli("plot", str(report), "-o", str(picture))
    reader.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(picture).st_mode) and got[1].startswith(b"\x89PNG")


# -- the bootstrap ---------------------------------------------------------------------------------------


def test_one_document_per_category_is_cut_into_runs_of_lines_for_the_bootstrap(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """One ``.txt`` per category made one block: every replicate drew the same text and the
    intervals had no width (exit 0, no warning)."""
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "--bootstrap", "6",
                                     "--format", "json"))  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["bootstrap"]["blocks"] == {"de": 32, "en": 32, "fr": 32}
    assert result["bootstrap"]["cut_into_lines"] == ["de", "en", "fr"]
    assert any("runs of consecutive lines" in n for n in result["notes"])
    widths = [high - low for low, high in result["intervals"].values()]
    assert max(widths) > 0.01, result["intervals"]
    # A category of a single line cannot be cut: a warning says its interval means little.
    (samples / "fr" / "t.txt").write_text(" ".join(["un deux trois"] * 3000), encoding="utf-8")
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "--bootstrap", "6",
                                     "--format", "json"))  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["bootstrap"]["blocks"]["fr"] == 1
    assert any("fewer than 8 blocks" in w and "fr (1)" in w for w in result["warnings"]), result["warnings"]


def test_runs_of_lines_keep_every_line_in_order() -> None:
    from mixinfer.bootstrap import _runs_of_lines

    docs = ["".join(f"line {i} of doc {d}\n" for i in range(50)) for d in range(3)]
    runs = _runs_of_lines(docs, 32)
    assert len(runs) == 32
    assert "".join(text for run in runs for text in run) == "".join(docs)
    # A run's lines of one document are one text: a run holds at most one text per document.
    assert all(len(run) <= 2 for run in runs) and sum(len(run) for run in runs) == 32 + 2
    sizes = [sum(len(text) for text in run) for run in runs]
    assert max(sizes) <= 2 * min(sizes)
    assert sum(len(run) for run in _runs_of_lines(docs, 32, whole=False)) == 150
    assert _runs_of_lines(["one line only"], 32) == [["one line only"]]


def test_runs_of_lines_count_as_the_documents_but_at_the_cuts(three_categories: Path) -> None:
    """The blocks' summed counts differ from the counted words by at most a word per cut."""
    from mixinfer.bootstrap import count_blocks
    from mixinfer.counting import count_words
    from mixinfer.pretokenizers import PRESETS
    from mixinfer.samples import discover

    pretok = PRESETS["default"]
    for cat in discover(three_categories):
        blocks = count_blocks(cat, pretok, max_bytes=40_000, unit="document")
        assert blocks.cut and len(blocks.words) == 32
        whole = count_words([cat], pretok, max_bytes=40_000, workers=1)[0]
        summed: dict[bytes, int] = {}
        for b in blocks.words:
            for w, c in b.items():
                summed[w] = summed.get(w, 0) + c
        differ = sum(abs(summed.get(w, 0) - whole.words.get(w, 0)) for w in set(summed) | set(whole.words))
        assert differ <= 3 * 31, differ
        assert int(blocks.bytes.sum()) == whole.bytes


def test_intervals_come_only_from_replicates_that_reached_their_optimum() -> None:
    """Replicates stopped by the time limit gave intervals as if they were draws (exit 0)."""
    import numpy as np

    from mixinfer.bootstrap import BootstrapResult, calibrated_intervals

    draws = np.array([[0.5, 0.5], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1]])
    blocks = {"en": 32, "de": 32}
    boot = BootstrapResult(4, 0.9, 0, blocks, draws, ["optimal", "optimal", "optimal", "time_limit"])
    assert boot.optimal == 3
    estimate = {"en": 0.5, "de": 0.5}
    # The stopped replicate (0.9) is not a draw of the estimator.
    assert boot.around(estimate) == calibrated_intervals(["en", "de"], draws[:3], estimate, 0.9)
    assert boot.around(estimate) != calibrated_intervals(["en", "de"], draws, estimate, 0.9)
    assert any("only 3 of 4 bootstrap replicates" in w for w in boot.warnings())
    stopped = BootstrapResult(4, 0.9, 0, blocks, draws, ["time_limit"] * 4)
    assert stopped.around(estimate) is None
    assert any("there are no intervals" in w for w in stopped.warnings())
    assert BootstrapResult(4, 0.9, 0, blocks, draws, ["optimal"] * 4).warnings() == []


def test_warnings_about_skipped_files_come_from_this_run_not_the_cache(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """A cached run repeated the skipped-file warnings of the run that filled the cache: a link
    gone since was still reported, a new broken one was not."""
    args = infer_args(small_bpe_tokenizer_json, samples, tmp_path, "--format", "json")

    def warned() -> list[str]:
        code, out, err = cli(*args)
        assert code == 0, err
        return [w for w in json.loads(out)["warnings"] if "gone.txt" in w]

    assert warned() == []  # fills the cache
    (samples / "en" / "gone.txt").symlink_to(tmp_path / "nowhere")
    assert len(warned()) == 1  # the cached answer, this run's warning
    (samples / "en" / "gone.txt").unlink()
    assert warned() == []


# -- what the reports say -------------------------------------------------------------------------------


def test_a_truth_whose_fractions_miss_one_is_noted(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """``{"en": 0.5, "de": 0.7}`` was scaled to sum to 1 without a word; percentages still are."""
    truth = tmp_path / "t.json"

    def warnings(text: str) -> list[str]:
        truth.write_text(text, encoding="utf-8")
        args = infer_args(
            small_bpe_tokenizer_json, samples, tmp_path, "--truth", str(truth), "--format", "json"
        )
        code, out, err = cli(*args)
        assert code == 0, err
        return [w for w in json.loads(out)["warnings"] if "sums to" in w]

    assert len(warnings('{"en": 0.5, "de": 0.7}')) == 1
    assert "sums to 1.2, not 1" in warnings('{"en": 0.5, "de": 0.7}')[0]
    assert warnings('{"en": 50, "de": 30, "fr": 20}') == []


def test_a_category_cut_at_the_default_budget_is_warned_about(
    small_bpe_tokenizer_json: Path, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default budget (shown as "all of each sample") silently cut larger samples at 1 GB."""
    from mixinfer import infer, stages

    monkeypatch.setattr(stages, "DEFAULT_MAX_BYTES", 5_000)
    result = infer(small_bpe_tokenizer_json, samples, merges=60, max_bytes=5_000, use_cache=False)
    (warning,) = [w for w in result.warnings if "default budget" in w]
    assert "3 categories were read only up to the default budget of 5,000 bytes: de, en, fr" in warning
    result = infer(small_bpe_tokenizer_json, samples, merges=60, max_bytes=4_000, use_cache=False)
    assert not any("default budget" in w for w in result.warnings)


def test_a_parquet_column_that_is_not_text_is_refused_like_a_jsonl_field(tmp_path: Path) -> None:
    """A ``text`` column of numbers read as zero documents, without a word."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from mixinfer.sources import iter_documents, open_samples

    (tmp_path / "en").mkdir()
    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "en" / "a.parquet")
    (en,) = open_samples(str(tmp_path)).categories()
    with pytest.raises(errors.SamplesError, match="column 'text' holds int64, not text"):
        list(iter_documents(en))
    # Text, also dictionary-encoded, is read; null rows are skipped.
    column = pa.array(["one two", None, "three"]).dictionary_encode()
    pq.write_table(pa.table({"text": column}), tmp_path / "en" / "a.parquet")
    (en,) = open_samples(str(tmp_path)).categories()
    assert list(iter_documents(en)) == ["one two", "three"]


# -- audit reports ---------------------------------------------------------------------------------------


def test_a_wide_audit_keeps_its_intervals_and_plot_reads_them(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """``audit --bootstrap --wide`` computed the intervals and wrote a CSV without them."""
    from mixinfer.audit import read_intervals, read_report

    def audit(*extra: str) -> Path:
        out = tmp_path / f"w{len(extra)}.csv"
        args = ["audit", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                "--bootstrap", "3", "--cache-dir", str(tmp_path / "c"), "-q", "--wide",
                "-o", str(out)]  # fmt: skip
        code, _, err = cli(*args, *extra)
        assert code == 0, err
        return out

    wide, by_group = audit(), audit("--by", "group")
    header = wide.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:4] == ["tokenizer", "en", "en_low", "en_high"]
    table, _ = read_report(wide)
    intervals = read_intervals(wide)
    (label,) = table
    assert set(table[label]) == {"de", "en", "fr"} and set(intervals[label]) == {"de", "en", "fr"}
    assert all(lo <= table[label][c] <= hi for c, (lo, hi) in intervals[label].items())
    # By group, a group's bounds are the sums of its categories' (de and fr are one group).
    assert set(read_report(by_group)[0][label]) == {"English", "Latin/Cyrillic languages"}
    lo, hi = read_intervals(by_group)[label]["Latin/Cyrillic languages"]
    assert math.isclose(lo, min(1.0, intervals[label]["de"][0] + intervals[label]["fr"][0]))
    assert math.isclose(hi, min(1.0, intervals[label]["de"][1] + intervals[label]["fr"][1]))
    pytest.importorskip("matplotlib")
    for report in (wide, by_group):
        code, _, err = cli("plot", str(report), "-o", str(report.with_suffix(".png")))
        assert code == 0, err


def test_plot_refuses_a_report_whose_rows_disagree(tmp_path: Path) -> None:
    """Joined reports of different --groups: the last row silently decided a category's group."""
    report = tmp_path / "r.csv"
    header = "tokenizer,category,group,proportion\n"
    report.write_text(header + "a,en,English,0.5\na,code,Code,0.5\nb,en,Code,0.3\nb,code,Code,0.7\n")
    code, _, err = cli("plot", str(report), "-o", str(tmp_path / "r.png"))
    assert code == 2 and "puts 'en' in group 'Code', an earlier line in 'English'" in err, err
    report.write_text(header + "a,en,English,0.5\na,en,English,0.5\n")
    code, _, err = cli("plot", str(report), "-o", str(tmp_path / "r.png"))
    assert code == 2 and "gives 'a' 'en' a second time" in err, err
