"""`mixinfer simulate` and the baselines (issue 5): a tiny controlled experiment end to end through
the CLI, determinism, and unit tests of TC, TEE (never fitted on the trial it scores) and random."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mixinfer import baselines
from mixinfer.cli import EXIT_CODES, app
from mixinfer.errors import SamplesError, UsageError
from mixinfer.simulate import (
    CSV_COLUMNS,
    SimulationSettings,
    draw_mixture,
    shuffled,
    simulate,
    split_documents,
    train_bpe,
    training_stream,
)

BUNDLED = Path(__file__).resolve().parents[1] / "data_samples" / "general"
LANGUAGES = ("de", "en", "fr", "ru")
PER_CATEGORY = 250_000  # bytes of compressed files copied per category (about 0.6 MB of text)

TINY = [
    "--n", "3", "--trials", "3", "--train-bytes", "300kB", "--attack-bytes", "100kB",
    "--vocab", "556", "--merges", "200", "--seed", "7", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def lang_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four natural-language categories: the first files of the bundled samples."""
    root = tmp_path_factory.mktemp("sim-samples")
    for lang in LANGUAGES:
        src = BUNDLED / lang
        files = sorted(src.glob("*.txt.gz")) if src.is_dir() else []
        if len(files) < 10:
            pytest.skip(f"bundled samples {src} are not available")
        (root / lang).mkdir()
        size = 0
        for f in files:
            shutil.copy2(f, root / lang / f.name)
            size += f.stat().st_size
            if size >= PER_CATEGORY:
                break
    return root


def run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["simulate", *args])
    return result.exit_code, result.output


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def without_seconds(path: Path) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    col = rows[0].index("seconds")
    return [r[:col] + r[col + 1 :] for r in rows]


@pytest.fixture(scope="module")
def tiny_run(lang_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One tiny simulation through the CLI (cold cache); returns (CSV, cache directory)."""
    out = tmp_path_factory.mktemp("sim-out")
    cache = out / "cache"
    csv_path = out / "results.csv"
    code, output = run_cli(
        ["--samples", str(lang_samples), *TINY, "--cache-dir", str(cache), "-o", str(csv_path)]
    )
    assert code == 0, output
    return csv_path, cache


def test_cli_writes_one_row_per_trial_and_method(tiny_run: tuple[Path, Path]) -> None:
    csv_path, _ = tiny_run
    rows = read_csv(csv_path)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(int(r["trial"]), r["method"]) for r in rows] == [
        (t, m) for t in range(3) for m in ("lp", "tee", "tc", "random")
    ]
    for r in rows:
        cats = json.loads(r["categories"])
        truth = json.loads(r["truth"])
        estimate = json.loads(r["estimate"])
        assert int(r["n"]) == len(cats) == 3
        assert set(cats) <= set(LANGUAGES)
        assert sorted(truth) == sorted(estimate) == sorted(cats)
        assert math.isclose(sum(truth.values()), 1.0) and math.isclose(sum(estimate.values()), 1.0)
        mse = float(r["mse"])
        assert math.isclose(mse, np.mean([(estimate[c] - truth[c]) ** 2 for c in cats]))
        assert math.isclose(float(r["log10_mse"]), math.log10(mse))
        assert float(r["seconds"]) >= 0


def test_lp_beats_the_baselines_on_average(tiny_run: tuple[Path, Path]) -> None:
    rows = read_csv(tiny_run[0])
    mean = {
        m: np.mean([float(r["log10_mse"]) for r in rows if r["method"] == m])
        for m in ("lp", "tee", "tc", "random")
    }
    assert mean["lp"] < mean["random"] - 1.0, mean
    assert mean["lp"] < min(mean["tee"], mean["tc"]), mean


def test_same_seed_same_results_cached_or_not(
    tiny_run: tuple[Path, Path], lang_samples: Path, tmp_path: Path
) -> None:
    csv_path, cache = tiny_run
    warm = tmp_path / "warm.csv"
    code, output = run_cli(
        ["--samples", str(lang_samples), *TINY, "--cache-dir", str(cache), "-o", str(warm)]
    )
    assert code == 0, output
    assert without_seconds(warm) == without_seconds(csv_path)
    assert (cache / "sim-tokenizer").is_dir() and any((cache / "sim-tokenizer").iterdir())
    cold = tmp_path / "cold.csv"
    code, output = run_cli(["--samples", str(lang_samples), *TINY, "--no-cache", "-o", str(cold)])
    assert code == 0, output
    assert without_seconds(cold) == without_seconds(csv_path)


def test_table_on_stdout_and_single_trial_tee_is_nan(lang_samples: Path, tmp_path: Path) -> None:
    args = ["--samples", str(lang_samples), "--n", "2", "--trials", "1", "--train-bytes", "100kB",
            "--attack-bytes", "50kB", "--vocab", "356", "--merges", "100", "--methods", "tee,tc",
            "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    code, output = run_cli(args)
    assert code == 0, output
    assert "TEE" in output and "TC" in output and "n/a" in output
    assert "LP (ours)" not in output and "whole vocabulary" in output
    result = simulate(
        lang_samples,
        SimulationSettings(
            n=2, trials=1, train_bytes=100_000, attack_bytes=50_000, vocab=356, merges=100,
            methods=("tee", "tc"),
        ),
        cache_dir=tmp_path / "c",
    )  # fmt: skip
    tee = [r for r in result.records if r.method == "tee"]
    assert len(tee) == 1 and tee[0].estimate is None and math.isnan(tee[0].log10_mse)
    assert any("at least 2 trials" in n for n in result.notes)
    # The baselines can be restricted to the LP's merge prefix: a different TC answer.
    prefix = simulate(
        lang_samples,
        SimulationSettings(
            n=2, trials=1, train_bytes=100_000, attack_bytes=50_000, vocab=356, merges=100,
            baseline_merges=10, methods=("tc",),
        ),
        cache_dir=tmp_path / "c",
    )  # fmt: skip
    (tc,) = [r for r in result.records if r.method == "tc"]
    assert prefix.records[0].truth == tc.truth and prefix.records[0].estimate != tc.estimate


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n", "1"], "--n must be at least 2"),
        (["--n", "9"], "needs at least 9 categories"),
        (["--n", "2", "--merges", "500", "--vocab", "600"], "raise --vocab"),
        (["--n", "2", "--methods", "lp,magic"], "unknown method"),
        (["--n", "2", "--train-bytes", "lots"], "--train-bytes 'lots' is not a size"),
        (["--n", "2", "--categories", "en,xx"], "unknown category xx"),
    ],
)
def test_bad_options_exit_with_usage_error(
    lang_samples: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    code, output = run_cli(["--samples", str(lang_samples), *args, "--cache-dir", str(tmp_path)])
    assert code == EXIT_CODES[UsageError], output
    assert needle in " ".join(output.split())
    assert "Traceback" not in output


def test_a_category_with_one_document_cannot_be_split(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "one.txt").write_text("just one document here\n" * 50)
    (tmp_path / "b" / "two.txt").write_text("and a second one\n" * 50)
    code, output = run_cli(
        ["--samples", str(tmp_path), "--n", "2", "--trials", "1", "--vocab", "300",
         "--merges", "20", "--no-cache"]
    )  # fmt: skip
    assert code == EXIT_CODES[SamplesError], output
    assert "at least 2" in output and "'a'" in output


# --------------------------------------------------------------------------------------------------
# Building blocks


def test_mixture_draws_are_seeded_and_per_trial() -> None:
    pool = [f"c{i}" for i in range(10)]
    a = draw_mixture(pool, 4, seed=3, trial=2)
    assert a == draw_mixture(pool, 4, seed=3, trial=2)
    assert a != draw_mixture(pool, 4, seed=3, trial=1)
    names, weights = a
    assert names == sorted(names) and len(set(names)) == 4
    assert math.isclose(sum(weights.values()), 1.0) and min(weights.values()) > 0


def test_split_is_disjoint_and_shuffle_deterministic() -> None:
    docs = [f"doc {i}" for i in range(11)]
    train, attack = split_documents(docs)
    assert not set(train) & set(attack) and sorted(train + attack) == sorted(docs)
    assert len(train) == 6 and len(attack) == 5
    assert shuffled(docs, "x", 1) == shuffled(docs, "x", 1) != shuffled(docs, "x", 2)
    assert sorted(shuffled(docs, "x", 1)) == sorted(docs)


def test_training_stream_repeats_and_cuts_exactly() -> None:
    docs = ["aé\n", "bcd\nxy\n"]  # 4 and 7 bytes
    items, size = training_stream(docs, 25, "document")
    assert size == 25 and items[:4] == ["aé\n", "bcd\nxy\n", "aé\n", "bcd\nxy\n"]
    assert "".join(items).encode() == ("aé\nbcd\nxy\n" * 3).encode()[:25]
    items, size = training_stream(docs, 2, "document")  # cut inside "é": no half character
    assert items == ["a"] and size == 1
    lines, size = training_stream(docs, 9, "line")
    assert lines == ["aé\n", "bcd\n", "x"] and size == 9
    assert training_stream(docs, 0, "document") == ([], 0)


def test_truncated_tokenizer_applies_only_the_first_merges(license_text: str) -> None:
    tok_json = train_bpe([license_text[:50_000]], 356)
    full = json.loads(tok_json)["model"]
    trunc = baselines.truncated_tokenizer(tok_json, 40)
    assert trunc.merges == 40 and len(trunc.merged_ids) == 40
    assert trunc.vocab_size == 256 + 40
    created = {"".join(m) for m in full["merges"][:40]}
    assert {full["vocab"][t] for t in created} == set(trunc.merged_ids.tolist())
    counts = baselines.token_counts(trunc, [license_text[:5000]])
    assert counts.shape == (trunc.vocab_size,) and counts.sum() > 0
    used = set(np.nonzero(counts)[0].tolist())
    assert used <= set(range(256)) | set(trunc.merged_ids.tolist())


def test_lp_recovers_a_simulated_mixture_exactly_from_the_training_text(
    lang_samples: Path, tmp_path: Path
) -> None:
    """With the text the tokenizer was trained on as the samples, there is no sampling error: the
    LP must find the true byte proportions (what limits accuracy in simulations is sampling)."""
    from mixinfer import infer
    from mixinfer.samples import discover, iter_documents
    from mixinfer.tokenizer import tokenizer_from_json

    cats = {c.name: c for c in discover(lang_samples)}
    names, weights = draw_mixture(sorted(cats), 3, seed=1, trial=0)
    stream: list[str] = []
    fed: dict[str, int] = {}
    for c in names:
        train, _ = split_documents(list(iter_documents(cats[c])))
        items, fed[c] = training_stream(train, round(weights[c] * 400_000), "document")
        stream += items
        (tmp_path / c).mkdir()
        with (tmp_path / c / "fed.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"text": t}) + "\n" for t in items)
    truth = {c: fed[c] / sum(fed.values()) for c in names}
    tok = tokenizer_from_json(json.loads(train_bpe(stream, 556)), source="oracle")
    result = infer(tok, tmp_path, merges=300, truth=truth, use_cache=False, workers=1)
    assert result.log10_mse is not None and result.log10_mse < -8, result.proportions


# --------------------------------------------------------------------------------------------------
# Baselines


def test_tc_assigns_each_token_to_its_most_frequent_category() -> None:
    # Token ids 0..5; both samples encode to 10 tokens, so relative = absolute frequency.
    counts = {
        "a": np.array([5, 0, 3, 1, 1, 0]),
        "b": np.array([0, 4, 3, 2, 0, 1]),
    }
    # token 0 -> a, 1 -> b, 2 tie (left out), 3 -> b, 4 -> a, 5 -> b
    assert baselines.tc_estimate(counts) == {"a": 2 / 5, "b": 3 / 5}
    # Only tokens 0, 1 and 4 are candidates.
    assert baselines.tc_estimate(counts, np.array([0, 1, 4])) == {"a": 2 / 3, "b": 1 / 3}
    # Frequencies are relative to each sample's size: b's sample is 10x larger.
    scaled = {"a": counts["a"], "b": counts["b"] * 10}
    assert baselines.tc_estimate(scaled) == baselines.tc_estimate(counts)
    # Nothing classifiable: uniform.
    assert baselines.tc_estimate({"a": np.zeros(3), "b": np.zeros(3)}) == {"a": 0.5, "b": 0.5}


def test_loglog_model_recovers_a_line() -> None:
    xs = [0.1, 0.2, 0.4, 0.8]
    ps = [math.exp(2.0 * x - 3.0) for x in xs]
    model = baselines.LogLogModel.fit(xs, ps)
    assert math.isclose(model.slope, 2.0) and math.isclose(model.intercept, -3.0)
    pred = model.predict({"a": 0.1, "b": 0.6})
    assert math.isclose(sum(pred.values()), 1.0)
    assert math.isclose(pred["b"] / pred["a"], math.exp(2.0 * 0.5))
    with pytest.raises(UsageError):
        baselines.LogLogModel.fit([0.3, 0.3], [0.5, 0.5])


def test_tee_is_never_fitted_on_the_trial_it_scores() -> None:
    rng = np.random.default_rng(0)

    def obs(key: int) -> baselines.TEEObservation:
        names = ["a", "b", "c"]
        truth = dict(zip(names, rng.dirichlet(np.ones(3)), strict=True))
        feats = {c: 0.5 * math.log(p) + rng.normal(0, 0.1) for c, p in truth.items()}
        return baselines.TEEObservation(key, feats, truth)

    observations = [obs(k) for k in range(5)]
    before = baselines.tee_leave_one_out(observations)
    # Change trial 2's truth wildly: its own estimate must not move, the others' must.
    changed = list(observations)
    o = observations[2]
    changed[2] = baselines.TEEObservation(o.key, o.features, {"a": 0.98, "b": 0.01, "c": 0.01})
    after = baselines.tee_leave_one_out(changed)
    assert after[2].estimate == before[2].estimate
    for i in (0, 1, 3, 4):
        assert after[i].estimate != before[i].estimate
    # Each model is exactly the fit on the other observations.
    xs = [x for j, ob in enumerate(observations) if j != 2 for x in ob.features.values()]
    ps = [ob.truth[c] for j, ob in enumerate(observations) if j != 2 for c in ob.features]
    assert before[2].model == baselines.LogLogModel.fit(xs, ps)
    # A single observation has nothing to fit on.
    (alone,) = baselines.tee_leave_one_out(observations[:1])
    assert alone.estimate is None and "at least 2 trials" in alone.note


def test_tee_feature_and_random_estimate() -> None:
    # The tokenizer needs 80 tokens where the reference needs 100: 25% more bytes per token.
    assert math.isclose(baselines.tee_feature(1000, 80, 100), math.log(1.25))
    a = baselines.random_estimate(["x", "y", "z"], np.random.default_rng([1, 2]))
    b = baselines.random_estimate(["x", "y", "z"], np.random.default_rng([1, 2]))
    assert a == b and math.isclose(sum(a.values()), 1.0) and min(a.values()) > 0


# --------------------------------------------------------------------------------------------------
# The shift benchmark (issue 15): attack samples from another folder


def _attack_folder(root: Path, lang_samples: Path, names: Sequence[str], keep: int) -> Path:
    """Categories ``names`` of ``lang_samples`` rewritten as one JSONL each (their last ``keep``
    documents): other files, other fingerprints, same category names."""
    from mixinfer.samples import discover, iter_documents

    cats = {c.name: c for c in discover(lang_samples)}
    for name in names:
        docs = list(iter_documents(cats[name]))[-keep:]
        (root / name).mkdir(parents=True)
        (root / name / "attack.jsonl").write_text(
            "".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8"
        )
    return root


def test_attack_samples_replace_the_held_out_half(lang_samples: Path, tmp_path: Path) -> None:
    wide = _attack_folder(tmp_path / "wide", lang_samples, ["de", "en", "fr"], keep=40)
    narrow = _attack_folder(tmp_path / "narrow", lang_samples, ["de", "en", "fr"], keep=3)
    settings = SimulationSettings(
        n=2, trials=2, train_bytes=300_000, attack_bytes=100_000, vocab=556, merges=200,
        methods=("lp", "tc"), seed=7,
    )  # fmt: skip
    cache = tmp_path / "cache"
    runs = {
        name: simulate(lang_samples, settings, attack_samples=folder, cache_dir=cache, workers=1)
        for name, folder in (("wide", wide), ("narrow", narrow))
    }
    for res in runs.values():
        assert res.pool == ["de", "en", "fr"]  # ru has no attack sample: left out, and said so
        assert any("ru" in n and "attack samples" in n for n in res.notes), res.notes
        assert res.attack_samples is not None and res.to_dict()["settings"]["split"] == "whole-samples-v1"
    # The attack texts are the attack folder's: three documents are far fewer bytes than forty.
    assert runs["narrow"].mean_attack_bytes() < runs["wide"].mean_attack_bytes()
    # Same tokenizers (training depends only on --samples), other answers: nothing of one attack
    # folder's cached LP answers was returned for the other.
    assert [t.tokenizer_key for t in runs["narrow"].trials] == [t.tokenizer_key for t in runs["wide"].trials]
    estimates = {name: [r.estimate for r in res.records if r.method == "lp"] for name, res in runs.items()}
    assert estimates["narrow"] != estimates["wide"]
    again = simulate(lang_samples, settings, attack_samples=narrow, cache_dir=cache, workers=1)
    assert [r.estimate for r in again.records if r.method == "lp"] == estimates["narrow"]
    # In-domain tokenizers are trained on half the documents: other keys than the shifted ones.
    indomain = simulate(lang_samples, settings, categories=["de", "en", "fr"], cache_dir=cache, workers=1)
    assert {t.tokenizer_key for t in indomain.trials}.isdisjoint(t.tokenizer_key for t in again.trials)


def test_attack_samples_must_hold_the_requested_categories(lang_samples: Path, tmp_path: Path) -> None:
    folder = _attack_folder(tmp_path / "a", lang_samples, ["de", "en"], keep=2)
    code, output = run_cli(
        ["--samples", str(lang_samples), "--attack-samples", str(folder), "--categories", "de,ru",
         *TINY[2:], "--n", "2", "--no-cache"]
    )  # fmt: skip
    assert code == EXIT_CODES[UsageError], output
    assert "ru" in output and "--attack-samples" in " ".join(output.split())


def test_shift_split_of_the_bundled_samples_is_by_source() -> None:
    """scripts/shift_samples.py: languages train on man pages only, attack with the rest; code
    projects are never on both sides; the split is a function of the manifest."""
    import sys

    manifest = BUNDLED.parent / "MANIFEST.json"
    if not manifest.is_file():
        pytest.skip("bundled samples are not built")
    sys.path.insert(0, str(BUNDLED.parents[1] / "scripts"))
    from shift_samples import project, sides

    cats = json.loads(manifest.read_text(encoding="utf-8"))["categories"]
    de = cats["general/de"]["files"]
    source = {f["file"]: f["source"] for f in de}
    train, attack = sides(de, "man-vs-rest")
    assert train and attack and not set(train) & set(attack)
    assert all(source[f].startswith("/usr/share/man/") for f in train)
    assert all(source[f].startswith("/usr/share/locale/") for f in attack)
    py = cats["programming/python"]["files"]
    source = {f["file"]: f["source"] for f in py}
    train, attack = sides(py, "projects")
    assert train and attack and len(train) + len(attack) == len(py)
    assert not {project(source[f]) for f in train} & {project(source[f]) for f in attack}
    assert sides(py, "projects") == (train, attack)


def test_distractors_are_offered_with_true_share_zero(lang_samples: Path, tmp_path: Path) -> None:
    settings = SimulationSettings(
        n=2, trials=2, train_bytes=300_000, attack_bytes=100_000, vocab=556, merges=200,
        methods=("lp", "tc", "random"), seed=7,
    )  # fmt: skip
    cache = tmp_path / "cache"
    plain = simulate(lang_samples, settings, cache_dir=cache, workers=1)
    offered = simulate(lang_samples, dataclasses.replace(settings, distractors=2), cache_dir=cache, workers=1)
    for before, after in zip(plain.trials, offered.trials, strict=True):
        # The same mixtures and tokenizers: the distractors come from a stream of their own.
        assert (before.categories, before.truth) == (after.categories, after.truth)
        assert before.tokenizer_key == after.tokenizer_key
        assert len(after.distractors) == 2 and set(after.distractors).isdisjoint(after.categories)
        assert after.offered == sorted(LANGUAGES)
        assert {c: after.scored_truth[c] for c in after.distractors} == {c: 0.0 for c in after.distractors}
    for rec in offered.records:
        info = offered.trials[rec.trial]
        assert rec.categories == info.offered and rec.truth == info.scored_truth
        assert rec.estimate is not None and set(rec.estimate) == set(info.offered)
        assert math.isclose(sum(rec.estimate.values()), 1.0, abs_tol=1e-9)
        # The MSE is taken over every offered category, distractors included.
        expected = np.mean([(rec.estimate[c] - rec.truth[c]) ** 2 for c in info.offered])
        assert math.isclose(rec.mse, expected)
    # The CSV's n is the mixture's size (--n), the distractors a column of their own.
    rows = list(csv.DictReader(io.StringIO(offered.to_csv())))
    assert {(r["n"], r["distractors"]) for r in rows} == {("2", "2")}
    data = offered.to_dict()
    assert data["settings"]["distractors"] == 2
    assert [t["distractors"] for t in data["trials"]] == [t.distractors for t in offered.trials]
    # The LP gives the categories the tokenizer never saw little weight.
    lp = [r for r in offered.records if r.method == "lp"]
    assert all(sum(r.estimate[c] for c in offered.trials[r.trial].distractors) < 0.2 for r in lp)  # type: ignore[index]
    # The table says what the error is taken over.
    code, output = run_cli(
        ["--samples", str(lang_samples), *TINY, "--trials", "1", "--distractors", "1",
         "--methods", "lp,random", "--cache-dir", str(cache)]
    )  # fmt: skip
    assert code == 0, output
    assert "+ 1 distractors (true share 0; MSE over all 4)" in " ".join(output.split())
    # Too many distractors for the pool is a usage error that names both options.
    code, output = run_cli(
        ["--samples", str(lang_samples), *TINY, "--distractors", "2", "--cache-dir", str(cache)]
    )
    assert code == EXIT_CODES[UsageError], output
    assert "--distractors 2" in " ".join(output.split()) and "Traceback" not in output
    code, output = run_cli(["--samples", str(lang_samples), *TINY, "--distractors", "-1", "--no-cache"])
    assert code == EXIT_CODES[UsageError] and "--distractors must be" in " ".join(output.split())
