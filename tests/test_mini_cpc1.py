"""Tests of the embedded mini-CPC1 generator (e032/minicpc1, demo/make_mini_cpc1.py).

Layout, formats and schema are checked against bits of the real CPC1 sample copied into
tests/data/mini_cpc1/ (see its README); most tests use the session fixture ``tiny_cpc1_root``.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.stats import spearmanr

from e032.minicpc1 import listener_model
from e032.minicpc1.generator import design, generate
from e032.minicpc1.hearing_aids import apply_system, nalr_gains_db
from e032.minicpc1.listeners import make_listeners
from e032.minicpc1.presets import PRESETS, MiniCPC1Config
from e032.minicpc1.scenes import SAMPLE_RATE, spatialize
from e032.minicpc1.sentences import partition_sentences, sentence_bank, vocabulary

REAL = Path(__file__).resolve().parent / "data" / "mini_cpc1"
REPO = Path(__file__).resolve().parents[1]
SIGNAL_RE = re.compile(r"^S\d{5}_L\d{4}_E\d{3}$")
TTS_MISSING = [p for p in ("espeak-ng", "flite") if shutil.which(p) is None]
needs_tts = pytest.mark.skipif(bool(TTS_MISSING), reason=f"needs the TTS programs {TTS_MISSING}")


def _load(root: Path, rel: str):
    return json.loads((root / rel).read_text(encoding="utf-8"))


def _lists(root: Path) -> dict[str, list[dict]]:
    return {
        "train": _load(root, "clarity_CPC1_data_train/metadata/CPC1.train.json"),
        "train_indep": _load(root, "clarity_CPC1_data_train/metadata/CPC1.train_indep.json"),
        "test": _load(root, "test_listener_responses/CPC1.test.json"),
        "test_indep": _load(root, "test_listener_responses/CPC1.test_indep.json"),
    }


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two word lists (tiny inputs)."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


# ------------------------------------------------------------------------------------------------
# layout, schema and formats vs the real CPC1 sample


def test_layout(tiny_cpc1_root: Path) -> None:
    root = tiny_cpc1_root
    for rel in (
        "clarity_CPC1_data_train/metadata/CPC1.train.json",
        "clarity_CPC1_data_train/metadata/CPC1.train_indep.json",
        "clarity_CPC1_data_train/metadata/listeners.CPC1_train.json",
        "clarity_CPC1_data_train/metadata/scenes.CPC1_train.json",
        "clarity_CPC1_data_test/metadata/CPC1.test.json",
        "clarity_CPC1_data_test/metadata/CPC1.test_indep.json",
        "clarity_CPC1_data_test/metadata/listeners.CPC1_all.json",
        "test_listener_responses/CPC1.test.json",
        "test_listener_responses/CPC1.test_indep.json",
        "latent/signals.json",
        "latent/ceiling.json",
        "clean_corpus/clean_train.csv",
        "clean_corpus/clean_valid.csv",
    ):
        assert (root / rel).is_file(), rel
    for name, records in _lists(root).items():
        assert records, f"{name} list is empty"
        archive = root / f"clarity_CPC1_data_{name.split('_')[0]}" / "clarity_data"
        on_disk = {p.stem for p in (archive / "HA_outputs" / name).glob("*.wav")}
        assert on_disk == {r["signal"] for r in records}, name  # exactly the listed signals
        for scene in {r["scene"] for r in records}:
            assert (archive / "scenes" / f"{scene}_target_anechoic.wav").is_file()


def test_record_schema_matches_real_cpc1(tiny_cpc1_root: Path) -> None:
    real = json.loads((REAL / "real_CPC1.train.json").read_text())[0]
    for name, records in _lists(tiny_cpc1_root).items():
        for r in records:
            assert set(r) == set(real), name
            for key, value in real.items():
                assert isinstance(r[key], type(value)), (key, r[key])
            assert (
                SIGNAL_RE.match(r["signal"]) and r["signal"] == f"{r['scene']}_{r['listener']}_{r['system']}"
            )
            assert r["prompt"] == r["prompt"].lower() and r["n_words"] == len(r["prompt"].split())
            assert 4 <= r["n_words"] <= 10 and 0 <= r["hits"] <= r["n_words"]
            assert r["correctness"] == pytest.approx(100.0 * r["hits"] / r["n_words"])
            # the response contains exactly `hits` prompt words, in order
            assert _lcs(r["prompt"].split(), r["response"].split()) == r["hits"], r
            assert 0 <= r["volume"] <= 100


def test_test_metadata_has_prompts_but_no_labels(tiny_cpc1_root: Path) -> None:
    for name in ("test", "test_indep"):
        released = _load(tiny_cpc1_root, f"clarity_CPC1_data_test/metadata/CPC1.{name}.json")
        labels = _load(tiny_cpc1_root, f"test_listener_responses/CPC1.{name}.json")
        assert [r["signal"] for r in released] == [r["signal"] for r in labels]
        for r, full in zip(released, labels, strict=True):
            assert "prompt" in r and not {"hits", "correctness", "response"} & set(r)
            assert r == {k: v for k, v in full.items() if k in r}


def test_listener_files_match_real_format_and_span(tiny_cpc1_root: Path) -> None:
    real = json.loads((REAL / "real_listeners.CPC1_train.json").read_text())
    real_record = next(iter(real.values()))
    train = _load(tiny_cpc1_root, "clarity_CPC1_data_train/metadata/listeners.CPC1_train.json")
    everyone = _load(tiny_cpc1_root, "clarity_CPC1_data_test/metadata/listeners.CPC1_all.json")
    assert train == everyone and len(train) >= 16
    for key, record in train.items():
        assert set(record) == set(real_record) and record["name"] == key and re.match(r"^L\d{4}$", key)
        assert record["audiogram_cfs"] == real_record["audiogram_cfs"]
        for side in ("l", "r"):
            levels = record[f"audiogram_levels_{side}"]
            assert len(levels) == 8 and all(isinstance(v, int) and 0 <= v <= 100 for v in levels)
    levels = np.array(
        [[r["audiogram_levels_l"], r["audiogram_levels_r"]] for r in train.values()], dtype=float
    )
    mean_loss = levels.mean(axis=(1, 2))
    assert mean_loss.min() <= 15 and levels[:, :, 3:].mean(axis=(1, 2)).max() >= 65  # normal ... severe
    assert np.abs(levels[:, 0] - levels[:, 1]).mean(axis=1).max() >= 15  # some asymmetric
    hf_minus_lf = levels[:, :, 5:].mean(axis=(1, 2)) - levels[:, :, :2].mean(axis=(1, 2))
    assert hf_minus_lf.max() >= 30 and hf_minus_lf.min() <= 10  # sloping and flat


def test_audio_formats_match_real_cpc1(tiny_cpc1_root: Path) -> None:
    real_ha = sf.info(REAL / "real_S08510_L0239_E001_first1000ms.wav")
    real_ref = sf.info(REAL / "real_S08510_target_anechoic_first1000ms.wav")
    records = _lists(tiny_cpc1_root)["train"]
    data = tiny_cpc1_root / "clarity_CPC1_data_train" / "clarity_data"
    for r in records[:6]:
        ha = sf.info(data / "HA_outputs" / "train" / f"{r['signal']}.wav")
        ref = sf.info(data / "scenes" / f"{r['scene']}_target_anechoic.wav")
        for ours, real in ((ha, real_ha), (ref, real_ref)):
            assert (ours.samplerate, ours.channels, ours.format, ours.subtype) == (
                real.samplerate,
                real.channels,
                real.format,
                real.subtype,
            )
        assert 0 <= ref.frames - ha.frames <= 300  # HA outputs a little shorter, as in CPC1
        assert 4.0 <= ref.frames / SAMPLE_RATE <= 7.5


def test_timing_levels_and_binaural_cues(tiny_cpc1_root: Path) -> None:
    data = tiny_cpc1_root / "clarity_CPC1_data_train" / "clarity_data"
    real_ref, _ = sf.read(REAL / "real_S08510_target_anechoic_first1000ms.wav")
    assert np.sqrt(np.mean(real_ref**2)) < 10 ** (-60 / 20)  # real target is silent at the start too
    for r in _lists(tiny_cpc1_root)["train"][:6]:
        ref, _ = sf.read(data / "scenes" / f"{r['scene']}_target_anechoic.wav")
        ha, _ = sf.read(data / "HA_outputs" / "train" / f"{r['signal']}.wav")
        level = lambda x: 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)  # noqa: E731
        assert level(ref[: int(1.95 * SAMPLE_RATE)]) < -80  # target starts at 2 s
        assert level(ref[int(2.05 * SAMPLE_RATE) : int(2.5 * SAMPLE_RATE)]) > -40
        assert level(ref[-int(0.95 * SAMPLE_RATE) :]) < -80  # ... and ends 1 s before the end
        assert -30 < level(ref) < -15  # real reference: about -22 dBFS
        assert level(ha[: int(1.9 * SAMPLE_RATE)]) > -90  # interferer during the lead
        assert -70 < level(ha) < -10
        # ears differ (delay / level) but carry the same source
        assert not np.allclose(ref[:, 0], ref[:, 1])
        assert np.corrcoef(ref[:, 0], ref[:, 1])[0, 1] > 0.3 or abs(level(ref[:, 0]) - level(ref[:, 1])) > 1


# ------------------------------------------------------------------------------------------------
# tracks


def test_open_track_holds_out_listeners_and_systems(tiny_cpc1_root: Path) -> None:
    lists = _lists(tiny_cpc1_root)
    ids = {k: [r["signal"] for r in v] for k, v in lists.items()}
    assert set(ids["test_indep"]) < set(ids["test"])  # open test is a subset of the closed test
    assert set(ids["train_indep"]) < set(ids["train"])
    seen_listeners = {r["listener"] for r in lists["train_indep"]}
    seen_systems = {r["system"] for r in lists["train_indep"]}
    assert {r["listener"] for r in lists["train"]} - seen_listeners  # some listeners held out
    assert {r["system"] for r in lists["train"]} - seen_systems  # some systems held out
    for r in lists["test_indep"]:  # every open-test signal has an unseen listener or system
        assert r["listener"] not in seen_listeners or r["system"] not in seen_systems
    heldout_listeners = {x["name"] for x in _load(tiny_cpc1_root, "latent/listeners.json") if x["heldout"]}
    heldout_systems = set(_load(tiny_cpc1_root, "latent/config.json")["heldout_systems"])
    assert heldout_listeners and heldout_systems
    assert not heldout_listeners & seen_listeners and not heldout_systems & seen_systems
    for r in lists["test"]:  # the open test set is exactly the test signals with a held-out part
        heldout = r["listener"] in heldout_listeners or r["system"] in heldout_systems
        assert heldout == (r["signal"] in ids["test_indep"])
    for name in ("train", "train_indep"):  # the recipe's dev split (dev_percent 0.3) is non-empty
        assert math.floor(len({r["scene"] for r in lists[name]}) * 0.3) >= 1
    assert not {r["scene"] for r in lists["train"]} & {r["scene"] for r in lists["test"]}


# ------------------------------------------------------------------------------------------------
# labels and the listener model


def test_latent_file_and_ceiling(tiny_cpc1_root: Path) -> None:
    latent = {x["signal"]: x for x in _load(tiny_cpc1_root, "latent/signals.json")}
    ceiling = _load(tiny_cpc1_root, "latent/ceiling.json")
    for name in ("test", "test_indep"):
        records = _lists(tiny_cpc1_root)[name]
        p = [100 * latent[r["signal"]]["p"] for r in records]
        expected = np.corrcoef(p, [r["correctness"] for r in records])[0, 1]
        assert ceiling[name] == pytest.approx(expected, abs=1e-5)
    # over all signals (the tiny test lists alone are too short for a stable value)
    p_all = [100 * x["p"] for x in latent.values()]
    assert np.corrcoef(p_all, [x["correctness"] for x in latent.values()])[0, 1] > 0.85
    snr = [x["snr_db"] for x in latent.values()]
    assert spearmanr(snr, [x["p"] for x in latent.values()]).statistic > 0.3


def test_word_probability_falls_with_snr_and_hearing_loss() -> None:
    speech = np.broadcast_to(np.array([62.0, 63.0, 60.0, 55.0, 50.0, 42.0]), (2, 6))
    hl0 = np.zeros((2, 6))
    snrs = np.arange(-30.0, 31.0, 2.0)
    p_snr = [
        float(
            listener_model.word_probability(listener_model.intelligibility_index(speech, speech - snr, hl0))
        )
        for snr in snrs
    ]
    assert np.all(np.diff(p_snr) >= 0) and p_snr[0] < 0.02 and p_snr[-1] > 0.98
    quiet = speech - 60.0
    losses = np.arange(0.0, 101.0, 5.0)
    p_hl = [
        float(listener_model.word_probability(listener_model.intelligibility_index(speech, quiet, hl0 + hl)))
        for hl in losses
    ]
    assert np.all(np.diff(p_hl) <= 0) and p_hl[0] > 0.98 and p_hl[-1] < 0.02


def test_labels_fall_with_snr_and_hearing_loss_over_a_large_draw() -> None:
    """Random scenes (no audio): hits drawn as the generator does fall with noise and with loss."""
    rng = np.random.default_rng(123)
    n = 4000
    snr = rng.uniform(-15, 15, n)
    speech = rng.uniform(50, 70, (n, 1, 1)) + np.array([0.0, 1.0, -2.0, -7.0, -12.0, -20.0])
    speech = np.broadcast_to(speech, (n, 2, 6))
    listeners = make_listeners(64, rng)
    which = rng.integers(len(listeners), size=n)
    hl = np.stack(
        [
            [
                listener_model.audiogram_at_bands(listeners[i].levels_l),
                listener_model.audiogram_at_bands(listeners[i].levels_r),
            ]
            for i in which
        ]
    )
    p = listener_model.word_probability(
        listener_model.intelligibility_index(speech, speech - snr[:, None, None], hl)
    )
    correctness = 100 * rng.binomial(8, p) / 8
    assert spearmanr(snr, correctness).statistic > 0.3
    assert spearmanr(hl.mean(axis=(1, 2)), correctness).statistic < -0.2
    low, high = np.percentile(hl.mean(axis=(1, 2)), [25, 75])
    assert (
        correctness[hl.mean(axis=(1, 2)) <= low].mean()
        > correctness[hl.mean(axis=(1, 2)) >= high].mean() + 10
    )


def test_response_is_consistent_with_hits() -> None:
    rng = np.random.default_rng(0)
    prompt = "the old man bought the red car yesterday"
    vocab = sorted(vocabulary(sentence_bank(200)))
    for hits in range(9):
        response = listener_model.make_response(prompt, hits, vocab, rng)
        assert _lcs(prompt.split(), response.split()) == hits


# ------------------------------------------------------------------------------------------------
# building blocks


def test_sentences_distinct_ordinary_and_partitioned() -> None:
    bank = sentence_bank(3000)
    assert len(set(bank)) == 3000 and all(4 <= len(s.split()) <= 10 for s in bank)
    assert 200 <= len(vocabulary(bank)) <= 600  # a learnable vocabulary
    parts = partition_sentences(np.random.default_rng(0), 150, 60, 24, 60, 600)
    groups = [set(parts.test), set(parts.train), set(parts.babble), set(parts.clean_valid)]
    assert sum(map(len, groups)) == len(set().union(*groups))  # disjoint
    assert not set(parts.clean_train) & (set(parts.test) | set(parts.babble) | set(parts.clean_valid))
    assert vocabulary(parts.test) <= vocabulary(parts.clean_train)  # ASR can learn every test word


def test_babble_never_speaks_the_target_sentence() -> None:
    jobs, *_ = design(PRESETS["demo"], Path("/nonexistent"))
    kinds = {j.spec.interferer_kind for j in jobs}
    assert kinds == {"ssn", "babble"}
    for j in jobs:
        for talker in j.spec.babble:
            assert j.spec.sentence not in talker.sentences and talker.voice != j.spec.voice


def test_nalr_gains_by_hand() -> None:
    levels = [20, 30, 40, 50, 60, 70, 80, 90]
    x = 0.05 * (30 + 40 + 50)
    k = [-17, -8, 1, -1, -2, -2, -2, -2]
    expected = [max(0.0, x + 0.31 * h + kk) for h, kk in zip(levels, k, strict=True)]
    np.testing.assert_allclose(nalr_gains_db(levels), expected)


def test_hearing_aid_systems() -> None:
    rng = np.random.default_rng(0)
    n = SAMPLE_RATE
    # target: a 1 kHz tone burst train (sparse in time and frequency); noise: white
    t = np.arange(n) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 1000 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    target = np.stack([tone, tone], axis=1) * 10 ** (-47 / 20)
    noise = rng.standard_normal((n, 2)) * 10 ** (-50 / 20)
    moderate = ([30, 35, 40, 50, 55, 60, 65, 70],) * 2
    for system in ("E001", "E002", "E003", "E004", "E005"):
        out = apply_system(system, target, noise, moderate)
        assert out.output.shape == target.shape
        np.testing.assert_allclose(out.output, out.target + out.noise, atol=1e-12)
    np.testing.assert_array_equal(apply_system("E001", target, noise, moderate).output, target + noise)
    level = lambda x: 10 * np.log10(np.mean(x**2))  # noqa: E731
    e002 = apply_system("E002", target, noise, moderate)
    assert level(e002.output) > level(target + noise) + 5  # NAL-R amplifies for a moderate loss
    snr_in = level(target) - level(noise)
    e005 = apply_system("E005", target, noise, moderate)
    assert level(e005.target) - level(e005.noise) > snr_in + 2  # noise reduction helps
    soft, loud = (apply_system("E003", target * g, noise * g, moderate) for g in (0.1, 10.0))
    gain_soft, gain_loud = (
        level(soft.output) - level(0.1 * (target + noise)),
        level(loud.output) - level(10 * (target + noise)),
    )
    assert gain_soft > gain_loud + 10  # compression: less gain for louder input
    e004 = apply_system("E004", target, noise, moderate).output
    spectrum = np.abs(np.fft.rfft(e004[:, 0])) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    assert spectrum[freqs > 6000].sum() < 0.01 * spectrum[freqs < 2000].sum()  # harsh low-pass


def test_every_system_limits_its_output_to_110_db_spl() -> None:
    rng = np.random.default_rng(2)
    target = rng.standard_normal((SAMPLE_RATE // 2, 2)) * 10 ** (-20 / 20)  # 100 dB SPL
    noise = rng.standard_normal((SAMPLE_RATE // 2, 2)) * 10 ** (-8 / 20)  # 112 dB SPL: too loud already
    severe = ([50, 60, 70, 80, 90, 95, 100, 100],) * 2
    level = lambda x: 20 * np.log10(np.sqrt(np.mean(x**2)))  # noqa: E731
    for system in ("E001", "E002", "E003", "E004", "E005"):
        out = apply_system(system, target, noise, severe)
        assert level(out.output) == pytest.approx(-10.0, abs=1e-9), system  # 110 dB SPL, MSBG calibration
        np.testing.assert_allclose(out.output, out.target + out.noise, atol=1e-12)
    quiet = apply_system("E001", target * 0.01, noise * 0.01, severe)  # below the limit: untouched
    np.testing.assert_array_equal(quiet.output, target * 0.01 + noise * 0.01)


def test_spatialize_gives_itd_and_ild() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(SAMPLE_RATE // 2)
    ears = spatialize(x, 60.0)
    lag = np.argmax(np.correlate(ears[:, 0], ears[:200, 1], mode="valid")[:60])
    assert 15 <= lag <= 30  # left ear lags by ~0.5 ms for a source on the right
    assert np.mean(ears[:, 1] ** 2) > 2 * np.mean(ears[:, 0] ** 2)  # right ear louder
    np.testing.assert_allclose(spatialize(x, 0.0)[:, 0], spatialize(x, 0.0)[:, 1])


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="n_train_scenes"):
        MiniCPC1Config(n_train_scenes=0, n_test_scenes=2)
    with pytest.raises(ValueError, match="unknown systems"):
        MiniCPC1Config(n_train_scenes=2, n_test_scenes=2, systems=("E001", "E999"))
    with pytest.raises(ValueError, match="heldout_systems"):
        MiniCPC1Config(n_train_scenes=2, n_test_scenes=2, systems=("E001",), heldout_systems=("E001",))


# ------------------------------------------------------------------------------------------------
# determinism, speed, clean corpus, CLI


MICRO = PRESETS["tiny"].replace(
    n_train_scenes=2,
    n_test_scenes=2,
    signals_per_scene=2,
    n_listeners=4,
    n_babble_sentences=4,
    n_clean_train=3,
    n_clean_valid=1,
)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@needs_tts
def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path: Path) -> None:
    generate(MICRO.replace(num_workers=2), tmp_path / "a")
    generate(MICRO.replace(num_workers=1), tmp_path / "b")
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 20
    assert [k for k in a if a[k] != b[k]] == []
    generate(MICRO.replace(num_workers=1, seed=1), tmp_path / "c")
    c = _tree(tmp_path / "c")
    assert c["latent/signals.json"] != a["latent/signals.json"]
    # a re-run over an existing root gives the same files, and warns about files it did not list
    stale = (
        tmp_path
        / "b"
        / "clarity_CPC1_data_train"
        / "clarity_data"
        / "HA_outputs"
        / "train"
        / "S00001_L0001_E001.wav"
    )
    stale.write_bytes(b"not a wav")
    with pytest.warns(UserWarning, match="not in CPC1.train.json"):
        assert not generate(MICRO.replace(num_workers=1), tmp_path / "b", force=True)["reused"]
    stale.unlink()
    assert _tree(tmp_path / "b") == a
    # without force, a complete dataset of the same configuration is reused, a damaged one is not
    assert generate(MICRO, tmp_path / "b")["reused"]
    next((tmp_path / "b" / "clean_corpus" / "wav" / "train").glob("*.wav")).unlink()
    assert not generate(MICRO, tmp_path / "b")["reused"]
    assert _tree(tmp_path / "b") == a


def test_tiny_generation_time(tiny_cpc1_summary: dict) -> None:
    # target: <= 30 s on 2 idle cores. The machine running the tests may be shared, so the wall-time
    # bound is loose; CPU time (workers and TTS processes included) is the stable measure.
    assert tiny_cpc1_summary["cpu_s"] <= 40, tiny_cpc1_summary
    assert tiny_cpc1_summary["wall_s"] <= 90, tiny_cpc1_summary


def test_clean_corpus(tiny_cpc1_root: Path) -> None:
    clean = tiny_cpc1_root / "clean_corpus"
    test_prompts = {r["prompt"].upper() for r in _lists(tiny_cpc1_root)["test"]}
    words = set()
    rows_by_part = {}
    for part in ("train", "valid"):
        with open(clean / f"clean_{part}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        rows_by_part[part] = rows
        assert rows and list(rows[0]) == ["ID", "duration", "wav", "spk_id", "wrd"]
        for row in rows[:10]:
            assert row["wav"].startswith("$data_root/")
            path = clean / row["wav"].removeprefix("$data_root/")
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert float(row["duration"]) == pytest.approx(info.frames / 16000, abs=1e-3)
        for row in rows:
            assert row["wrd"] == row["wrd"].upper() and row["wrd"] not in test_prompts
        words |= {w for row in rows for w in row["wrd"].split()} if part == "train" else set()
    assert len({r["spk_id"] for r in rows_by_part["train"]}) >= 4  # several voices
    assert {w.upper() for p in test_prompts for w in p.split()} <= words
    assert not {r["wrd"] for r in rows_by_part["train"]} & {r["wrd"] for r in rows_by_part["valid"]}


@needs_tts
def test_cli_prints_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "demo" / "make_mini_cpc1.py"),
            "--root",
            str(tmp_path / "cli"),
            "--preset",
            "tiny",
            "--n-train-scenes",
            "1",
            "--n-test-scenes",
            "1",
            "--signals-per-scene",
            "1",
            "--n-clean-train",
            "2",
            "--n-clean-valid",
            "1",
            "--n-babble-sentences",
            "3",
            "--num-workers",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "mini-CPC1 'tiny'" in result.stdout and "ceiling" in result.stdout
    assert len(_load(tmp_path / "cli", "clarity_CPC1_data_train/metadata/CPC1.train.json")) == 1
