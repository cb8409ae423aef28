"""`mixinfer audit`, extensions (`--base`, `--start-merge`) and category groups.

Tokenizers are trained here on known mixtures of real text (every fourth document of the bundled
``general`` samples en, de and code), with the paper's controlled pretokenizer. A mixture is made
by repeating each category's documents a whole number of times, and the attack samples are those
same documents, so the true byte proportions are known exactly and a correct inference recovers
them up to solver tolerance: these tests check the mechanics (prefix detection, constraints from
the start merge on, sharing, formats). Accuracy on disjoint samples is measured by the benchmark
scripts, not here.
"""

from __future__ import annotations

import base64
import gzip
import heapq
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mixinfer.audit import AuditResult, audit, read_report, tokenizer_label
from mixinfer.cli import app
from mixinfer.errors import MissingDependencyError, UsageError
from mixinfer.groups import (
    CODE,
    ENGLISH,
    LATIN_CYRILLIC,
    OTHER_LANGUAGES,
    default_group,
    group_categories,
    load_groups,
    parse_groups,
)
from mixinfer.pipeline import infer, shared_prefix

GENERAL = Path(__file__).resolve().parent.parent / "data_samples" / "general"
CATEGORIES = ("en", "de", "code")
REPEATS1 = {"en": 4, "de": 2, "code": 1}  # the base's training mixture
REPEATS2 = {"en": 1, "de": 2, "code": 4}  # the extension's
BASE_MERGES = 250
EXTRA_MERGES = 250


def _docs(category: str, files: list[Path]) -> list[str]:
    return [gzip.decompress(p.read_bytes()).decode("utf-8") for p in files]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The samples directory, its documents per category and the two true mixtures."""
    if not all((GENERAL / c).is_dir() for c in CATEGORIES):
        pytest.skip("bundled samples data_samples/general/{en,de,code} not available")
    root = tmp_path_factory.mktemp("audit")
    samples = root / "samples"
    docs: dict[str, list[str]] = {}
    for c in CATEGORIES:
        files = sorted((GENERAL / c).glob("*.txt.gz"))[::4]
        if len(files) < 20:
            pytest.skip(f"too few sample files in {GENERAL / c}")
        (samples / c).mkdir(parents=True)
        for f in files:
            shutil.copy(f, samples / c / f.name)
        docs[c] = _docs(c, files)
    sizes = {c: sum(len(d.encode("utf-8")) for d in docs[c]) for c in CATEGORIES}

    def truth(repeats: dict[str, int]) -> dict[str, float]:
        total = sum(sizes[c] * r for c, r in repeats.items())
        return {c: sizes[c] * r / total for c, r in repeats.items()}

    return {
        "root": root,
        "samples": samples,
        "docs": docs,
        "mix1": truth(REPEATS1),
        "mix2": truth(REPEATS2),
    }


def mixture_docs(docs: dict[str, list[str]], repeats: dict[str, int]) -> list[str]:
    """Each category's documents, repeated ``repeats[c]`` times."""
    return [d for c, r in repeats.items() for d in docs[c] * r]


def train_tokenizer(docs: list[str], merges: int, path: Path) -> Path:
    """HF BPE with the paper's controlled pretokenizer (Digits + ByteLevel, GPT-2 regex)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + merges,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(docs, trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def _apply(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    while len(symbols) > 1:
        best, best_rank = -1, None
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best < 0:
            break
        symbols[best : best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols


def extend_tokenizer(base: Path, docs: list[str], extra: int, path: Path) -> Path:
    """Continue BPE training of ``base`` on ``docs`` for ``extra`` merges (greedy, exact counts).

    The words of ``docs`` (pretokenized by the base's own pre-tokenizer, one document at a time)
    are first encoded with the base's merges; then the most frequent adjacent pair is merged,
    ``extra`` times (ties: the smallest pair). The result keeps the base's merges as its prefix.
    """
    from tokenizers import Tokenizer

    data = json.loads(base.read_text(encoding="utf-8"))
    pre = Tokenizer.from_file(str(base)).pre_tokenizer
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update(w for w, _ in pre.pre_tokenize_str(doc))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]]
    ranks = {m: i for i, m in enumerate(merges)}
    words = [_apply(list(w), ranks) for w in counts]
    freq = list(counts.values())
    pair_count: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, w in enumerate(words):
        for p in zip(w, w[1:], strict=False):
            pair_count[p] += freq[i]
            where.setdefault(p, set()).add(i)
    heap = [(-n, p) for p, n in pair_count.items()]
    heapq.heapify(heap)
    vocab = data["model"]["vocab"]
    new: list[tuple[str, str]] = []
    while len(new) < extra and heap:
        n, pair = heapq.heappop(heap)
        if -n != pair_count.get(pair, 0) or -n <= 0:
            continue
        new.append(pair)
        joined = pair[0] + pair[1]
        vocab.setdefault(joined, len(vocab))
        touched: set[tuple[str, str]] = set()
        for i in list(where.get(pair, ())):
            w = words[i]
            for p in zip(w, w[1:], strict=False):
                pair_count[p] -= freq[i]
                touched.add(p)
            out: list[str] = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
                    out.append(joined)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:], strict=False):
                pair_count[p] += freq[i]
                where.setdefault(p, set()).add(i)
                touched.add(p)
        pair_count.pop(pair, None)
        touched.discard(pair)
        for p in touched:
            # Counts changed both ways: push the current count (stale entries are skipped).
            heapq.heappush(heap, (-pair_count[p], p))
    data["model"]["merges"] = [list(m) for m in merges] + [list(m) for m in new]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def mse(props: dict[str, float], truth: dict[str, float]) -> float:
    return sum((props.get(c, 0.0) - truth[c]) ** 2 for c in truth) / len(truth)


@pytest.fixture(scope="module")
def tokenizers(corpus: dict[str, Any]) -> dict[str, Path]:
    root: Path = corpus["root"]
    base = train_tokenizer(
        mixture_docs(corpus["docs"], REPEATS1), BASE_MERGES, root / "base" / "tokenizer.json"
    )
    ext = extend_tokenizer(
        base,
        mixture_docs(corpus["docs"], REPEATS2),
        EXTRA_MERGES,
        root / "extended" / "tokenizer.json",
    )
    return {"base": base, "extended": ext}


def run_cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


# --------------------------------------------------------------------------------------------------
# Extensions


def test_base_finds_the_prefix_and_recovers_the_second_mixture(
    corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ext.json"
    total = BASE_MERGES + EXTRA_MERGES
    res = run_cli(
        [
            "infer",
            str(tokenizers["extended"]),
            "--base",
            str(tokenizers["base"]),
            "--samples",
            str(corpus["samples"]),
            "--merges",
            str(total),
            "--no-cache",
            "-q",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["base"]["shared_prefix"] == BASE_MERGES
    assert data["base"]["source"] == str(tokenizers["base"])
    assert data["start_merge"] == BASE_MERGES
    assert data["cleaning"]["enabled"] is True
    with_base = mse(data["proportions"], corpus["mix2"])
    assert with_base < 1e-8, (data["proportions"], corpus["mix2"])

    # --start-merge K is the same inference; without it the base's merges pull towards MIX1.
    out2 = tmp_path / "start.json"
    res = run_cli(
        [
            "infer",
            str(tokenizers["extended"]),
            "--start-merge",
            str(BASE_MERGES),
            "--samples",
            str(corpus["samples"]),
            "--merges",
            str(total),
            "--no-cache",
            "-q",
            "-o",
            str(out2),
        ]
    )
    assert res.exit_code == 0, res.output
    same = json.loads(out2.read_text())
    assert same["start_merge"] == BASE_MERGES and "base" not in same
    for c, v in data["proportions"].items():
        assert same["proportions"][c] == pytest.approx(v, abs=1e-6)
    plain = infer(tokenizers["extended"], corpus["samples"], merges=total, use_cache=False)
    assert mse(plain.proportions, corpus["mix2"]) > 1e-3


def test_base_errors(corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path) -> None:
    ext = str(tokenizers["extended"])
    samples = str(corpus["samples"])
    # The base's first two merges swapped: no shared prefix.
    data = json.loads(tokenizers["base"].read_text(encoding="utf-8"))
    m = data["model"]["merges"]
    first, second = (x.split(" ") if isinstance(x, str) else x for x in m[:2])
    assert "".join(first) not in second  # the swap keeps the list valid
    m[0], m[1] = m[1], m[0]
    vocab = data["model"]["vocab"]  # the ids too, or cleaning would see m[1] as inserted
    t0, t1 = "".join(first), "".join(second)
    vocab[t0], vocab[t1] = vocab[t1], vocab[t0]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    res = run_cli(["infer", ext, "--base", str(other), "--samples", samples, "--no-cache", "-q"])
    assert res.exit_code == 2
    assert "does not extend" in res.output
    # Both --base and --start-merge; nothing added.
    res = run_cli(
        [
            "infer",
            ext,
            "--base",
            str(tokenizers["base"]),
            "--start-merge",
            "10",
            "--samples",
            samples,
            "--no-cache",
            "-q",
        ]
    )
    assert res.exit_code == 2 and "not both" in res.output
    res = run_cli(["infer", ext, "--base", ext, "--samples", samples, "--no-cache", "-q"])
    assert res.exit_code == 2 and "adds no merge" in res.output


def test_shared_prefix() -> None:
    a = [(b"a", b"b"), (b"c", b"d"), (b"ab", b"cd")]
    assert shared_prefix(a, a + [(b"x", b"y")]) == 3
    assert shared_prefix(a, [(b"a", b"b"), (b"x", b"y")]) == 1
    assert shared_prefix(a, []) == 0
    long = [(bytes([i % 256]), bytes([i // 256])) for i in range(5000)]
    assert shared_prefix(long, long[:4097] + [(b"z", b"z")]) == 4097


# --------------------------------------------------------------------------------------------------
# Audit


def write_tiktoken(tokenizer_json: Path, path: Path) -> Path:
    """A .tiktoken file (base64 token, rank) from a byte-level tokenizer.json's merge order."""
    from mixinfer.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_json)
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    for i, (a, b) in enumerate(tok.merges):
        lines.append(f"{base64.b64encode(a + b).decode()} {256 + i}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def test_tiktoken_twin_audits_to_the_same_result(
    corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    twin = write_tiktoken(tokenizers["base"], tmp_path / "twin.tiktoken")
    result = audit([tokenizers["base"], twin], corpus["samples"], merges=BASE_MERGES, use_cache=False)
    assert not result.failed
    assert [e.label for e in result.entries] == ["base", "twin"]
    a, b = (e.result for e in result.entries)
    assert a is not None and b is not None
    assert b.pretokenizer["name"] == "default"
    assert a.merges_used == b.merges_used == BASE_MERGES
    for c in CATEGORIES:
        assert b.proportions[c] == pytest.approx(a.proportions[c], abs=1e-9)
    assert mse(a.proportions, corpus["mix1"]) < 1e-8


def test_audit_csv_and_failures(corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path) -> None:
    wordpiece = tmp_path / "wp" / "tokenizer.json"
    wordpiece.parent.mkdir()
    wordpiece.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}}))
    report = tmp_path / "out" / "report.csv"
    res = run_cli(
        [
            "audit",
            str(tokenizers["base"]),
            str(tmp_path / "missing.json"),
            str(wordpiece),
            "--samples",
            str(corpus["samples"]),
            "--merges",
            "100",
            "--no-cache",
            "-q",
            "-o",
            str(report),
        ]
    )
    assert res.exit_code == 3, res.output  # TokenizerError, the first failure
    assert "2 of 3 tokenizer(s) failed (missing, wp)" in res.output
    assert f"{report} holds the other 1" in res.output
    assert "WordPiece" in res.output
    lines = report.read_text().splitlines()
    assert lines[0] == "tokenizer,category,group,proportion"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == ["base"] * 3
    assert [r[1] for r in rows] == ["en", "code", "de"]  # by group, then name
    assert [r[2] for r in rows] == [ENGLISH, CODE, LATIN_CYRILLIC]
    assert sum(float(r[3]) for r in rows) == pytest.approx(1.0)
    table, groups = read_report(report)
    assert set(table) == {"base"} and groups["de"] == LATIN_CYRILLIC

    # --wide by group, to stdout; a failure-free run exits 0.
    res = run_cli(
        [
            "audit",
            str(tokenizers["base"]),
            "--samples",
            str(corpus["samples"]),
            "--merges",
            "100",
            "--no-cache",
            "-q",
            "--wide",
            "--by",
            "group",
            "-o",
            "-",
        ]
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == f"tokenizer,{ENGLISH},{CODE},{LATIN_CYRILLIC}"
    assert lines[1].startswith("base,") and len(lines) == 2

    # --format without --output: that format on stdout, as infer does (the table is not data).
    for fmt in ("csv", "json"):
        res = run_cli(
            ["audit", str(tokenizers["base"]), "--samples", str(corpus["samples"]), "--merges", "100",
             "--no-cache", "-q", "--format", fmt]
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        if fmt == "csv":
            assert res.stdout.splitlines()[0] == "tokenizer,category,group,proportion"
        else:
            assert json.loads(res.stdout)

    # Every tokenizer failing: nothing written, non-zero exit.
    empty = tmp_path / "none.csv"
    res = run_cli(
        [
            "audit",
            str(tmp_path / "missing.json"),
            "--samples",
            str(corpus["samples"]),
            "--no-cache",
            "-q",
            "-o",
            str(empty),
        ]
    )
    assert res.exit_code == 3 and not empty.exists()
    assert "nothing was written" in res.output


@pytest.fixture
def copy(tokenizers: dict[str, Path], tmp_path: Path) -> Path:
    """A byte-for-byte copy of the base tokenizer under another name: the same LP."""
    path = tmp_path / "copy" / "tokenizer.json"
    path.parent.mkdir()
    shutil.copy(tokenizers["base"], path)
    return path


def test_audit_shares_counts_and_traces(
    corpus: dict[str, Any], tokenizers: dict[str, Path], copy: Path
) -> None:
    progress: list[str] = []
    result = audit(
        [tokenizers["base"], copy, tokenizers["extended"]],
        corpus["samples"],
        merges=120,
        use_cache=False,
        groups={"de": "German"},
        progress=lambda p: progress.append(p.stage),
    )
    assert isinstance(result, AuditResult)
    assert [e.label for e in result.entries] == ["base", "copy", "extended"]
    assert result.shared["word_counts"] == {"copy": "base", "extended": "base"}
    # The extension shares the first 120 merges but not the list size, so not the traces.
    assert result.shared["traces"] == {"copy": "base"}
    a, b, _ = (e.result for e in result.entries)
    assert a is not None and b is not None and a.proportions == b.proportions
    assert result.groups["de"] == "German"
    assert result.group_names == [ENGLISH, CODE, "German"]
    assert "audit" in progress and "solve" in progress
    wide = result.to_wide_csv("category").splitlines()
    assert wide[0] == "tokenizer,en,code,de" and len(wide) == 4
    frame = result.to_frame()
    assert list(frame.columns) == ["tokenizer", "category", "group", "proportion"]
    data = json.loads(result.to_json())
    assert data["tokenizers"][0]["groups"]["German"] == pytest.approx(a.proportions["de"])


def test_lps_solved_at_once_give_the_same_report(
    corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    """--jobs 2 solves the LPs in two worker processes: the same answers as --jobs 1, in the same
    order, a failing tokenizer still reported, and the optima stored in the caller's cache."""
    sources = [tokenizers["base"], tmp_path / "missing.json", tokenizers["extended"]]
    kw: dict[str, Any] = {"merges": 120, "groups": {"de": "German"}}
    one = audit(sources, corpus["samples"], use_cache=False, jobs=1, **kw)
    cache = tmp_path / "cache"
    seen: list[str] = []
    two = audit(
        sources, corpus["samples"], cache_dir=cache, jobs=2, on_entry=lambda e: seen.append(e.label), **kw
    )
    assert [e.label for e in two.entries] == ["base", "missing", "extended"]
    assert sorted(seen) == sorted(e.label for e in two.entries)  # each reported once
    assert [e.ok for e in two.entries] == [True, False, True]
    assert two.entries[1].error_type == "TokenizerNotFoundError"
    for a, b in zip(one.entries, two.entries, strict=True):
        if a.result is not None:
            assert b.result is not None
            assert a.result.proportions == b.result.proportions
            assert a.result.solver["status"] == b.result.solver["status"] == "optimal"
            assert a.result.diagnostics == b.result.diagnostics
            assert b.result.timing["solve"] > 0 and b.result.timing["total"] >= b.result.timing["solve"]
    assert two.to_long_csv() == one.to_long_csv()
    # The workers had no cache; the caller stored their optima, so a second run solves nothing.
    again = audit(sources, corpus["samples"], cache_dir=cache, jobs=2, **kw)
    for e in again.succeeded:
        assert e.result is not None and "count" not in e.result.timing  # answered from the cache
    assert again.to_long_csv() == one.to_long_csv()
    with pytest.raises(UsageError, match="--jobs"):
        audit(sources, corpus["samples"], jobs=0, **kw)
    res = run_cli(["audit", str(tokenizers["base"]), "--samples", str(corpus["samples"]), "-j", "0", "-q"])
    assert res.exit_code == 2 and "--jobs must be" in " ".join(res.output.split())


def test_a_copy_waits_for_its_twins_lp_instead_of_solving_it_again(
    corpus: dict[str, Any], tokenizers: dict[str, Path], copy: Path
) -> None:
    stages: list[str] = []
    result = audit(
        [tokenizers["base"], copy, tokenizers["extended"]],
        corpus["samples"],
        merges=120,
        use_cache=False,
        jobs=2,
        progress=lambda p: stages.append(f"{p.stage}:{p.unit}:{p.total}"),
    )
    base, twin, ext = (e.result for e in result.entries)
    assert base is not None and twin is not None and ext is not None
    assert twin.proportions == base.proportions and twin.diagnostics == base.diagnostics
    assert twin.timing["solve"] == 0.0 < base.timing["solve"]
    assert "solve:LPs:2" in stages  # two LPs (base, extended) in two workers, not three
    # One LP to solve (the copy waits for it): solved here, its own rounds on the progress bar.
    stages.clear()
    pair = audit([tokenizers["base"], copy], corpus["samples"], merges=120, use_cache=False, jobs=2,
                 progress=lambda p: stages.append(f"{p.stage}:{p.unit}:{p.total}"))  # fmt: skip
    assert [e.result.proportions for e in pair.entries if e.result] == [base.proportions] * 2
    assert not any(s.startswith("solve:LPs") for s in stages) and any(s.startswith("solve:") for s in stages)


def test_lps_solved_at_once_on_a_dask_cluster(corpus: dict[str, Any], tokenizers: dict[str, Path]) -> None:
    """With --dask, the deferred LPs are jobs on the cluster (a LocalCluster here): same answers."""
    pytest.importorskip("dask.distributed")
    sources = [tokenizers["base"], tokenizers["extended"]]
    one = audit(sources, corpus["samples"], merges=120, use_cache=False, jobs=1)
    two = audit(sources, corpus["samples"], merges=120, use_cache=False, dask="local", workers=2, jobs=2)
    assert [e.ok for e in two.entries] == [True, True]
    assert two.to_long_csv() == one.to_long_csv()


def test_tokenizer_labels() -> None:
    assert tokenizer_label("/x/gpt-2.json") == "gpt-2"
    assert tokenizer_label("/x/llama/tokenizer.json") == "llama"
    assert tokenizer_label("tiktoken:cl100k_base") == "cl100k_base"
    assert tokenizer_label("org/name") == "name" or tokenizer_label("org/name") == "org/name"
    assert tokenizer_label("/x/o200k.tiktoken") == "o200k"


def test_audit_usage_errors(corpus: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        audit([], corpus["samples"])
    with pytest.raises(UsageError):
        audit(["x.json"], corpus["samples"], merges=0)
    res = run_cli(["audit", "x.json", "--samples", str(corpus["samples"]), "-o", "r.txt"])
    assert res.exit_code == 2 and ".csv or .json" in res.output


# --------------------------------------------------------------------------------------------------
# Groups


def test_default_groups() -> None:
    expected = {
        "en": ENGLISH,
        "en_web": ENGLISH,
        "books": ENGLISH,
        "code": CODE,
        "python": CODE,
        "cpp": CODE,
        "json": CODE,
        "rst": CODE,
        "de": LATIN_CYRILLIC,
        "ru": LATIN_CYRILLIC,
        "uk": LATIN_CYRILLIC,
        "vi": LATIN_CYRILLIC,
        "sr_Latn": LATIN_CYRILLIC,
        "uz-Cyrl": LATIN_CYRILLIC,
        "zh": OTHER_LANGUAGES,
        "ja": OTHER_LANGUAGES,
        "el": OTHER_LANGUAGES,
        "ar": OTHER_LANGUAGES,
        "zh-Hans": OTHER_LANGUAGES,
        "math": "math",
    }
    assert {c: default_group(c) for c in expected} == expected
    if GENERAL.is_dir():
        for sub in GENERAL.iterdir():
            assert default_group(sub.name) in (ENGLISH, CODE, LATIN_CYRILLIC, OTHER_LANGUAGES)


def test_groups_files(tmp_path: Path) -> None:
    yaml_text = "Germanic:\n  - de\n  - nl\nRomance: [fr, es]\n"
    json_text = json.dumps({"de": "Germanic", "nl": "Germanic", "fr": "Romance", "es": "Romance"})
    csv_text = "category,group\nde,Germanic\nnl,Germanic\nfr,Romance\nes,Romance\n"
    expected = {"de": "Germanic", "nl": "Germanic", "fr": "Romance", "es": "Romance"}
    for name, text in (("g.yaml", yaml_text), ("g.json", json_text), ("g.csv", csv_text)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert load_groups(path) == expected, name
    assert parse_groups("de,Germanic\n", "csv") == {"de": "Germanic"}  # header optional
    assert parse_groups('{"groups": {"x": "X"}}', "json") == {"x": "X"}
    mapped = group_categories(["de", "en", "ja"], load_groups(tmp_path / "g.csv"))
    assert mapped == {"de": "Germanic", "en": ENGLISH, "ja": OTHER_LANGUAGES}
    bad = {
        "a.txt": "x",
        "b.csv": "de,Germanic,extra\n",
        "c.json": "[1, 2]",
        "d.yaml": "de: [x: 1]\n",
        "e.json": json.dumps({"G": ["de"], "H": ["de"]}),
        "f.json": "{not json",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(UsageError):
            load_groups(tmp_path / name)
    with pytest.raises(UsageError, match="does not exist"):
        load_groups(tmp_path / "missing.yaml")


def test_yaml_groups_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)
    path = tmp_path / "g.yaml"
    path.write_text("de: Germanic\n", encoding="utf-8")
    with pytest.raises(MissingDependencyError, match=r"mixinfer\[yaml\]"):
        load_groups(path)


def test_audit_takes_a_base_per_tokenizer(
    corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    """`SOURCE:base=BASE:label=NAME`: each tokenizer of a batch may extend its own base."""
    out = tmp_path / "audit.json"
    ext, base = str(tokenizers["extended"]), str(tokenizers["base"])
    total = BASE_MERGES + EXTRA_MERGES
    spec = f"{ext}:base={base}:label=new-merges"
    samples = str(corpus["samples"])
    res = run_cli(["audit", base, spec, ext, "--samples", samples, "--merges", str(total), "--no-cache", "-q",
                   "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    entries = {e["label"]: e["result"] for e in json.loads(out.read_text())["tokenizers"]}
    assert len(entries) == 3 and "new-merges" in entries
    new = entries["new-merges"]
    assert new["base"]["shared_prefix"] == BASE_MERGES and new["start_merge"] == BASE_MERGES
    assert mse(new["proportions"], corpus["mix2"]) < 1e-8
    # Without the base, the same tokenizer's answer is pulled towards the base's mixture.
    plain = [e for label, e in entries.items() if label != "new-merges" and e["merges_used"] == total]
    assert plain and mse(plain[0]["proportions"], corpus["mix2"]) > 1e-6


@pytest.mark.parametrize(
    ("text", "source", "base", "label"),
    [
        ("a.json", "a.json", None, None),
        ("tiktoken:cl100k_base", "tiktoken:cl100k_base", None, None),
        ("l3.model:base=tiktoken:cl100k_base", "l3.model", "tiktoken:cl100k_base", None),
        ("l3.model:label=x:base=b.json", "l3.model", "b.json", "x"),
    ],
)
def test_tokenizer_specs_parse(text: str, source: str, base: str | None, label: str | None) -> None:
    from mixinfer.audit import TokenizerSpec

    spec = TokenizerSpec.parse(text)
    assert (spec.source, spec.base, spec.label) == (source, base, label)


def test_a_malformed_tokenizer_spec_is_a_usage_error() -> None:
    from mixinfer.audit import TokenizerSpec
    from mixinfer.errors import UsageError

    with pytest.raises(UsageError, match="needs a value"):
        TokenizerSpec.parse("a.json:base=")
    with pytest.raises(UsageError, match="twice"):
        TokenizerSpec.parse("a.json:base=b:base=c")


def test_merges_short_of_the_shared_prefix_count_the_new_merges(
    corpus: dict[str, Any], tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    """`--base` with a --merges that does not reach past the prefix (the default, for Llama 3 over
    cl100k) infers from that many new merges, and says so; the answer is the explicit total's."""
    out = tmp_path / "short.json"
    args = ["infer", str(tokenizers["extended"]), "--base", str(tokenizers["base"])]
    args += ["--samples", str(corpus["samples"]), "--no-cache", "-o", str(out)]
    res = run_cli([*args, "--merges", str(EXTRA_MERGES)])
    assert res.exit_code == 0, res.output
    assert f"--merges {EXTRA_MERGES} does not reach past the {BASE_MERGES} merges" in res.output
    assert "counts the new merges" in res.output
    short = json.loads(out.read_text())
    assert short["start_merge"] == BASE_MERGES
    assert short["merges_used"] == BASE_MERGES + EXTRA_MERGES
    assert mse(short["proportions"], corpus["mix2"]) < 1e-8
    # Without --merges: the default T counts new merges too (all of them here).
    res = run_cli(args)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["merges_used"] == BASE_MERGES + EXTRA_MERGES
