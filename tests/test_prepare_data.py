"""Tests of prepare_data.py: split, MSBG, 16 kHz files, CSVs, resume, sharding, input checks.

Most tests run on a small synthetic CPC1 tree built here (both tracks, short signals, so that MSBG
stays cheap); the end-to-end oracle test runs on the real CPC1 signal in tests/data/cpc1_sample/.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

import prepare_data
from e032 import prepare as prepare_module
from e032.data_split import split_scenes
from e032.resample import RESAMPLERS, resample, trim_start

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "cpc1_sample"
SAMPLE_SIGNAL = "S08510_L0239_E001"
SAMPLE_RATE = 44100
CFS = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
LISTENERS = {  # left, right dB HL: mild sloping; asymmetric moderate; near-normal (no smearing)
    "L0001": ([10, 10, 15, 20, 30, 40, 45, 50], [10, 15, 15, 25, 30, 40, 50, 50]),
    "L0002": ([20, 25, 30, 40, 50, 55, 60, 65], [10, 10, 20, 30, 35, 40, 45, 50]),
    "L0003": ([0, 5, 5, 10, 10, 10, 15, 15], [20, 25, 30, 45, 55, 60, 65, 70]),
}
# (scene, listener, system) per response list; the open lists are subsets, as in CPC1
TRAIN = [
    ("S00101", "L0001", "E001"),
    ("S00101", "L0002", "E002"),
    ("S00102", "L0003", "E001"),
    ("S00103", "L0001", "E002"),
    ("S00104", "L0002", "E001"),
    ("S00105", "L0003", "E002"),
]
TRAIN_INDEP = [TRAIN[0], TRAIN[2], TRAIN[3]]
TEST = [("S00201", "L0003", "E001"), ("S00202", "L0001", "E002")]
TEST_INDEP = [TEST[1]]
DURATION_S = 2.25  # just above the 2-s cut: keeps MSBG cheap


# --------------------------------------------------------------------------------------------
# synthetic CPC1 tree
# --------------------------------------------------------------------------------------------
def _record(scene: str, listener: str, system: str, index: int) -> dict:
    return {
        "signal": f"{scene}_{listener}_{system}",
        "scene": scene,
        "listener": listener,
        "system": system,
        "prompt": f"the quick brown fox number {index}",
        "response": "the fox",
        "n_words": 5,
        "hits": 2,
        "correctness": 40.0,
        "volume": 50,
    }


def _noise_speech(rng: np.random.Generator, gain: float) -> np.ndarray:
    """Amplitude-modulated noise [shape=(n, 2)], silent-ish lead-in, with a few peaks above 1."""
    n = int(DURATION_S * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.2 + (t > 1.0) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    signal = gain * rng.standard_normal((n, 2)) * envelope[:, None]
    return signal


def build_cpc1(root: Path) -> Path:
    """Write a small CPC1 tree (both archives, both tracks) under ``root``; return ``root``."""
    rng = np.random.default_rng(1234)
    listeners = {
        name: {"name": name, "audiogram_cfs": CFS, "audiogram_levels_l": left, "audiogram_levels_r": right}
        for name, (left, right) in LISTENERS.items()
    }
    lists = {"train": {"": TRAIN, "_indep": TRAIN_INDEP}, "test": {"": TEST, "_indep": TEST_INDEP}}
    for split, by_suffix in lists.items():
        data = root / f"clarity_CPC1_data_{split}"
        (data / "metadata").mkdir(parents=True)
        name = "listeners.CPC1_train.json" if split == "train" else "listeners.CPC1_all.json"
        (data / "metadata" / name).write_text(json.dumps(listeners))
        for suffix, entries in by_suffix.items():
            records = [_record(*entry, i) for i, entry in enumerate(entries)]
            (data / "metadata" / f"CPC1.{split}{suffix}.json").write_text(json.dumps(records))
            ha_dir = data / "clarity_data" / "HA_outputs" / f"{split}{suffix}"
            ha_dir.mkdir(parents=True)
            for index, record in enumerate(records):
                signal = _noise_speech(
                    rng, 0.8 if index == 0 else 0.1
                )  # first: peaks > 1 after MSBG and resampling
                signal[int(1.5 * SAMPLE_RATE), 1] = 1.6  # a peak above 1, as real HA outputs have
                sf.write(
                    ha_dir / f"{record['signal']}.wav",
                    signal.astype(np.float32),
                    SAMPLE_RATE,
                    subtype="FLOAT",
                )
        scenes = data / "clarity_data" / "scenes"
        scenes.mkdir(parents=True)
        for scene in sorted({entry[0] for entry in by_suffix[""]}):
            sf.write(
                scenes / f"{scene}_target_anechoic.wav",
                _noise_speech(rng, 0.05),
                SAMPLE_RATE,
                subtype="PCM_16",
            )
    return root


def make_cfg(root: Path, exp: Path, *overrides: str):
    """The Hydra config of prepare_data.py for ``root``/``exp`` (single process, no bars)."""
    with initialize_config_dir(config_dir=str(REPO), version_base=None):
        return compose(
            "config",
            overrides=[
                f"path.root={root}",
                f"path.exp_folder={exp}",
                "progress=false",
                "num_workers=1",
                *overrides,
            ],
        )


def run(root: Path, exp: Path, *overrides: str) -> None:
    prepare_data.main(make_cfg(root, exp, *overrides))


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest), Hydra logs excluded."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "hydra" not in p.parts
    }


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cpc1_root(tmp_path_factory) -> Path:
    return build_cpc1(tmp_path_factory.mktemp("cpc1"))


# --------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------
def test_split_is_seeded_by_scene_and_order_free():
    scenes = [f"S{i:05d}" for i in range(20)]
    train, dev = split_scenes(scenes, 0.3, seed=7)
    assert len(dev) == 6 and sorted(train + dev) == scenes and not set(train) & set(dev)
    assert split_scenes(list(reversed(scenes)) + scenes, 0.3, seed=7) == (train, dev)
    assert split_scenes(scenes, 0.3, seed=8) != (train, dev)
    assert split_scenes(scenes[:3], 0.3, seed=0)[1] == []  # floor(0.9) = 0
    with pytest.raises(ValueError, match="dev_percent must be in"):
        split_scenes(scenes, 1.5, seed=0)


def test_split_stage_writes_and_reuses_lists(cpc1_root, tmp_path):
    exp = tmp_path / "exp"
    run(cpc1_root, exp, "stage=split", "dev_percent=0.4", "split_seed=3")
    train = json.loads((exp / "data_split" / "scene_train_list.json").read_text())
    dev = json.loads((exp / "data_split" / "scene_dev_list.json").read_text())
    scenes = sorted({entry[0] for entry in TRAIN})
    assert (train, dev) == split_scenes(scenes, 0.4, seed=3) and len(dev) == 2
    assert json.loads((exp / "data_split" / "split_settings.json").read_text()) == {
        "dev_percent": 0.4,
        "split_seed": 3,
    }
    # reusing them with another seed or fraction is refused, naming the settings and both values
    with pytest.raises(ValueError, match=r"split_seed: stored 3, this run 99"):
        run(cpc1_root, exp, "stage=split", "dev_percent=0.4", "split_seed=99")
    with pytest.raises(ValueError, match=r"dev_percent: stored 0\.4, this run 0\.3"):
        run(cpc1_root, exp, "stage=split", "split_seed=3")
    # lists of the user's own (no stored settings) win over the config (the original's caching),
    # and the open track has its own
    (exp / "data_split" / "split_settings.json").unlink()
    (exp / "data_split" / "scene_dev_list.json").write_text(json.dumps(["S00101"]))
    (exp / "data_split" / "scene_train_list.json").write_text(json.dumps(scenes[1:]))
    run(cpc1_root, exp, "stage=split", "split_seed=99")
    assert json.loads((exp / "data_split" / "scene_dev_list.json").read_text()) == ["S00101"]
    assert not (exp / "data_split" / "split_settings.json").exists()
    run(cpc1_root, exp, "stage=split", "cpc1_track=open")
    open_scenes = sorted({entry[0] for entry in TRAIN_INDEP})
    open_lists = [
        json.loads((exp / "data_split" / f"scene_{p}_list_indep.json").read_text()) for p in ("train", "dev")
    ]
    assert sorted(open_lists[0] + open_lists[1]) == open_scenes
    # a stored list that does not cover the data is refused
    (exp / "data_split" / "scene_train_list.json").write_text(json.dumps(scenes[2:]))
    with pytest.raises(ValueError, match="in neither"):
        run(cpc1_root, exp, "stage=split")


# --------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resampler", RESAMPLERS)
def test_resample_length_rule_and_trim(resampler):
    rng = np.random.default_rng(0)
    for n in (441, 44100, 259584, 12345):
        out = resample(rng.standard_normal((n, 2)), 44100, 16000, resampler)
        assert out.shape == (int(np.ceil(n * (16000 / 44100))), 2)
    # a 1 kHz tone keeps its amplitude and frequency
    t = np.arange(44100) / 44100
    tone = resample(np.sin(2 * np.pi * 1000 * t)[:, None], 44100, 16000, resampler)[:, 0]
    t16 = np.arange(16000) / 16000
    np.testing.assert_allclose(tone[1000:-1000], np.sin(2 * np.pi * 1000 * t16)[1000:-1000], atol=1e-3)
    assert trim_start(np.zeros((48000, 2)), 2.0, 16000).shape == (16000, 2)
    with pytest.raises(ValueError, match="resampler must be one of"):
        resample(np.zeros((441, 2)), 44100, 16000, "sinc_best")


def band_energy_db(signal, reference, low_hz, high_hz, sample_rate=16000):
    """Energy of ``signal`` relative to ``reference`` in [low_hz, high_hz), in dB, per channel."""
    freqs = np.fft.rfftfreq(len(reference), 1 / sample_rate)
    band = (freqs >= low_hz) & (freqs < high_hz)
    power = lambda x: np.sum(np.abs(np.fft.rfft(x, axis=0)[band]) ** 2, axis=0)  # noqa: E731
    return 10 * np.log10(power(signal) / power(reference))


def test_default_resampler_is_librosa_09_kaiser_best_on_the_real_sample():
    """kaiser_best = what librosa 0.9 ran (resampy on channels-first data, then its length rule); it
    agrees with soxr HQ below 7 kHz and differs near Nyquist (docs/prepare_data.md, Resampler)."""
    import resampy

    signal, rate = sf.read(SAMPLE / "expected_msbg" / f"{SAMPLE_SIGNAL}_HL-output.wav")
    ours = resample(signal, rate, 16000)
    librosa_09 = resampy.resample(signal.T, rate, 16000, filter="kaiser_best", axis=-1).T
    n_out = int(np.ceil(len(signal) * (16000 / rate)))
    np.testing.assert_array_equal(ours[: len(librosa_09)], librosa_09)
    assert len(ours) == n_out and np.all(ours[len(librosa_09) :] == 0)
    soxr_hq = resample(signal, rate, 16000, "soxr_hq")
    difference = trim_start(soxr_hq - ours, 2.0, 16000)
    kaiser = trim_start(ours, 2.0, 16000)
    assert np.all(band_energy_db(difference, kaiser, 0, 7000) < -50)  # measured -76 / -54 dB (left / right)
    assert np.all(band_energy_db(difference, kaiser, 7600, 8001) > 10)  # soxr keeps more of that band


# --------------------------------------------------------------------------------------------
# the real CPC1 sample, end to end
# --------------------------------------------------------------------------------------------
def build_sample_root(root: Path) -> Path:
    """The real training signal as the training archive; an empty test archive beside it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "clarity_CPC1_data_train").symlink_to(SAMPLE / "clarity_CPC1_data_train")
    test_meta = root / "clarity_CPC1_data_test" / "metadata"
    test_meta.mkdir(parents=True)
    (test_meta / "CPC1.test.json").write_text("[]")
    shutil.copy(
        SAMPLE / "clarity_CPC1_data_train" / "metadata" / "listeners.CPC1_train.json",
        test_meta / "listeners.CPC1_all.json",
    )
    return root


@pytest.mark.filterwarnings("ignore:audiogram reaches:UserWarning")  # L0239: 100 dB HL
def test_real_sample_end_to_end(tmp_path):
    root, exp = build_sample_root(tmp_path / "root"), tmp_path / "exp"
    run(root, exp)
    ours, rate = sf.read(exp / "msbg" / "train" / f"{SAMPLE_SIGNAL}_HL-output.wav")
    expected, _ = sf.read(SAMPLE / "expected_msbg" / f"{SAMPLE_SIGNAL}_HL-output.wav")
    assert rate == 44100 and ours.shape == expected.shape == (259584, 2)
    assert np.abs(ours - expected).max() <= 1e-5 * np.abs(expected).max()
    # the CSV row and the 16 kHz files: kaiser_best, 2 s dropped, 16-bit PCM (clipped, as the original)
    rows = read_csv(exp / "cpc1_asr_data" / "left_train_msbg.csv")
    assert [r["ID"] for r in rows] == [SAMPLE_SIGNAL] and rows[0]["spk_id"] == "L0239"
    prompt = json.loads((SAMPLE / "clarity_CPC1_data_train/metadata/CPC1.train.json").read_text())
    assert rows[0]["wrd"] == prompt[0]["prompt"].upper()
    want = trim_start(resample(expected, 44100, 16000), 2.0, 16000)
    assert float(rows[0]["duration"]) == len(want) / 16000 == 94181 / 16000 - 2
    for ear, column in (("left", 0), ("right", 1)):
        path = exp / "cpc1_asr_data" / f"train_{ear}_msbg" / f"{SAMPLE_SIGNAL}.wav"
        got, got_rate = sf.read(path)
        assert got_rate == 16000 and sf.info(str(path)).subtype == "PCM_16"
        np.testing.assert_allclose(got, np.clip(want[:, column], -1, 32767 / 32768), atol=2e-4)
    right, _ = sf.read(exp / "cpc1_asr_data" / "train_right_msbg" / f"{SAMPLE_SIGNAL}.wav")
    assert right.max() == 32767 / 32768  # MSBG's right ear peaks at 2.39: clipped
    ref_rows = read_csv(exp / "cpc1_asr_data" / "right_train_ref.csv")
    assert ref_rows[0]["wav"] == "$data_root/train_right_ref/S08510.wav"  # relative: the folder can move
    for part in ("dev", "test"):  # one scene: floor(0.3) = 0 dev scenes; empty test list
        assert read_csv(exp / "cpc1_asr_data" / f"binaural_{part}_msbg.csv") == []


# --------------------------------------------------------------------------------------------
# full runs on the synthetic tree: CSVs, MSBG, both tracks, resume, shards
# --------------------------------------------------------------------------------------------
def is_record(path: Path) -> bool:
    """A stage record (``*_record*.json``): bookkeeping holding file times, not an output."""
    return path.suffix == ".json" and "_record" in path.name


def normalised_digest(exp: Path) -> dict[str, str]:
    """Digest of an exp folder with its own path in the CSVs replaced (to compare two folders).

    Stage records hold file times, so they are left out (two fresh runs differ there only).
    """
    digest = {}
    for path in sorted(exp.rglob("*")):
        if path.is_file() and "hydra" not in path.parts and not is_record(path):
            data = path.read_bytes()
            if path.suffix == ".csv":
                data = data.replace(str(exp).encode(), b"<exp>")
            digest[str(path.relative_to(exp))] = hashlib.sha256(data).hexdigest()
    return digest


@pytest.fixture(scope="module")
def reference_run(cpc1_root, tmp_path_factory):
    """One uninterrupted, unsharded run of both tracks into one exp folder."""
    exp = tmp_path_factory.mktemp("reference") / "exp"
    run(cpc1_root, exp)
    closed = normalised_digest(exp)
    run(cpc1_root, exp, "cpc1_track=open")
    return exp, closed


def expected_rows(entries, dev_scenes, part):
    records = [_record(*entry, i) for i, entry in enumerate(entries)]
    if part == "test":
        return records
    return [r for r in records if (r["scene"] in dev_scenes) == (part == "dev")]


@pytest.mark.parametrize("track", ["closed", "open"])
def test_csv_contents(reference_run, track):
    exp, _ = reference_run
    suffix = "" if track == "closed" else "_indep"
    asr = exp / f"cpc1_asr_data{suffix}"
    dev = json.loads((exp / "data_split" / f"scene_dev_list{suffix}.json").read_text())
    lists = {
        "train": TRAIN if track == "closed" else TRAIN_INDEP,
        "test": TEST if track == "closed" else TEST_INDEP,
    }
    assert sorted(p.name for p in asr.glob("*.csv")) == sorted(
        f"{e}_{p}_{k}.csv"
        for e in ("left", "right", "binaural")
        for p in ("train", "dev", "test")
        for k in ("msbg", "ref")
    )
    for part in ("train", "dev", "test"):
        records = expected_rows(lists["test" if part == "test" else "train"], dev, part)
        split = f"{'test' if part == 'test' else 'train'}{suffix}"
        for kind in ("msbg", "ref"):
            binaural = read_csv(asr / f"binaural_{part}_{kind}.csv")
            assert [r["ID"] for r in binaural] == [
                f"{ear}_{rec['signal']}" for rec in records for ear in ("left", "right")
            ]
            for ear in ("left", "right"):
                rows = read_csv(asr / f"{ear}_{part}_{kind}.csv")
                assert [r["ID"] for r in rows] == [rec["signal"] for rec in records]
                for row, rec in zip(rows, records, strict=True):
                    name = rec["signal"] if kind == "msbg" else rec["scene"]
                    assert row["wav"] == f"$data_root/{split}_{ear}_{kind}/{name}.wav"
                    info = sf.info(asr / row["wav"].removeprefix("$data_root/"))
                    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
                    assert row["duration"] == str(info.frames / 16000)
                    assert row["spk_id"] == rec["listener"] and row["wrd"] == rec["prompt"].upper()
    header = (asr / "left_test_msbg.csv").read_text().splitlines()[0]
    assert header == "ID,duration,wav,spk_id,wrd"


def test_msbg_outputs_match_listen(reference_run, cpc1_root):
    from msbg import Ear, Listener, listen

    exp, _ = reference_run
    ear = Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
    cases = [("train", "", TRAIN[2]), ("test", "", TEST[0]), ("train", "_indep", TRAIN_INDEP[1])]
    for split, suffix, (scene, listener, system) in cases:
        signal = f"{scene}_{listener}_{system}"
        name = "listeners.CPC1_train.json" if split == "train" else "listeners.CPC1_all.json"
        person = Listener.load_listener_dict(cpc1_root / f"clarity_CPC1_data_{split}" / "metadata" / name)[
            listener
        ]
        ha, _ = sf.read(
            cpc1_root
            / f"clarity_CPC1_data_{split}/clarity_data/HA_outputs"
            / f"{split}{suffix}"
            / f"{signal}.wav",
            always_2d=True,
        )
        direct = listen(ear, ha, person.audiogram_left, person.audiogram_right)
        ours, rate = sf.read(exp / "msbg" / f"{split}{suffix}" / f"{signal}_HL-output.wav")
        assert rate == 44100 and ours.shape == direct.shape
        assert sf.info(str(exp / "msbg" / f"{split}{suffix}" / f"{signal}_HL-output.wav")).subtype == "FLOAT"
        np.testing.assert_allclose(ours, direct, rtol=0, atol=1e-6 * np.abs(direct).max())


def test_tracks_share_exp_folder_without_overwriting(reference_run):
    exp, closed_digest = reference_run
    both = normalised_digest(exp)
    assert all(both[name] == digest for name, digest in closed_digest.items())
    assert len(both) > len(closed_digest)
    assert (exp / "data_split" / "scene_dev_list_indep.json").is_file()
    assert (exp / "cpc1_asr_data_indep" / "left_train_msbg.csv").is_file()


def test_crash_and_rerun_give_identical_outputs(reference_run, cpc1_root, tmp_path, monkeypatch):
    """Kill points: inside MSBG, inside the 16 kHz stage, and on-disk leftovers of a killed run."""
    import msbg.batch

    exp_ref, _ = reference_run
    exp = tmp_path / "exp"
    real_run_jobs = msbg.batch.run_jobs

    def crash_after_first_job(jobs, **kwargs):
        real_run_jobs(jobs[:1], **kwargs)
        raise KeyboardInterrupt("killed during MSBG")

    monkeypatch.setattr(msbg.batch, "run_jobs", crash_after_first_job)
    with pytest.raises(KeyboardInterrupt):
        run(cpc1_root, exp)
    monkeypatch.setattr(msbg.batch, "run_jobs", real_run_jobs)
    calls = []
    real_mono_split = prepare_module.run_mono_split

    def crash_on_third_file(job, settings):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed during the 16 kHz stage")
        return real_mono_split(job, settings)

    monkeypatch.setattr(prepare_module, "run_mono_split", crash_on_third_file)
    with pytest.raises(KeyboardInterrupt):
        run(cpc1_root, exp)
    monkeypatch.setattr(prepare_module, "run_mono_split", real_mono_split)
    assert not (exp / "cpc1_asr_data" / "left_train_msbg.csv").exists()
    # what a SIGKILL leaves: temporary files of atomic writes
    (exp / "msbg" / "train" / f".{TRAIN[0][0]}_x_HL-output.wav.abc.tmp.wav").write_bytes(b"RIFF")
    (exp / "cpc1_asr_data" / ".left_dev_ref.csv.abc.tmp.csv").write_text("ID,dur")
    run(cpc1_root, exp)
    run(cpc1_root, exp, "cpc1_track=open")
    assert normalised_digest(exp) == normalised_digest(exp_ref)
    # deleting outputs (and the CSVs) and re-running rebuilds the same files, CSV rows included
    test_signal = "_".join(TEST[0])
    for path in [
        *exp.glob("cpc1_asr_data/*.csv"),
        *exp.glob("cpc1_asr_data/train_left_ref/*"),
        exp / "msbg" / "test" / f"{test_signal}_HL-output.wav",
    ]:
        path.unlink()
    run(cpc1_root, exp)
    assert normalised_digest(exp) == normalised_digest(exp_ref)


def test_two_shards_and_merge_equal_one_run(reference_run, cpc1_root, tmp_path, capsys):
    exp_ref, closed_digest = reference_run
    exp = tmp_path / "exp"
    run(cpc1_root, exp, "num_shards=2", "shard_index=1", "num_workers=2")
    run(cpc1_root, exp, "num_shards=2", "shard_index=0")
    assert not list((exp / "cpc1_asr_data").glob("*.csv"))  # CSVs wait for the merge
    shard_lines = capsys.readouterr().out
    assert "shard 1/2" in shard_lines and "shard 2/2" in shard_lines
    with pytest.raises(FileNotFoundError, match="missing"):  # a merge before the shards finish
        run(cpc1_root, tmp_path / "other", "stage=merge")
    run(cpc1_root, exp, "stage=merge")
    assert normalised_digest(exp) == closed_digest


def test_shards_partition_the_signals():
    items = [
        prepare_module.SignalItem(f"S{i}", f"S{i // 2}", "L1", "p", split, "train")
        for i in range(7)
        for split in ("train", "test")
    ]
    shards = [prepare_module.shard_items(items, i, 3) for i in range(3)]
    flat = [item for part in shards for item in part]
    assert sorted(flat, key=lambda x: (x.split, x.signal)) == sorted(
        items, key=lambda x: (x.split, x.signal)
    ) and len(set(flat)) == len(items)
    assert [len(s) for s in shards] == [5, 5, 4]


def test_float_variant_keeps_peaks_and_settings_are_not_mixed(reference_run, cpc1_root, tmp_path):
    exp_ref, _ = reference_run
    exp = tmp_path / "exp"
    # reuse the reference MSBG outputs (same MSBG settings), write float 16 kHz files
    run(cpc1_root, exp, "wav_subtype=FLOAT", f"path.msbg_output_dir={exp_ref / 'msbg'}")
    assert not (exp / "msbg").exists()
    float_peak = 0.0
    for path in sorted((exp / "cpc1_asr_data").glob("train_*_msbg/*.wav")):
        pcm, _ = sf.read(exp_ref / path.relative_to(exp))
        flt, _ = sf.read(path)
        assert sf.info(str(path)).subtype == "FLOAT" and np.abs(pcm).max() <= 1.0
        np.testing.assert_allclose(pcm, np.clip(flt, -1, 32767 / 32768), atol=1 / 32768)
        float_peak = max(float_peak, np.abs(flt).max())
    assert float_peak > 1.0  # some MSBG peaks above 1 survive in the float files only
    with pytest.raises(ValueError, match="wav_subtype.*PCM_16|PCM_16.*FLOAT"):
        run(cpc1_root, exp, f"path.msbg_output_dir={exp_ref / 'msbg'}")
    with pytest.raises(ValueError, match="MSBGEar"):
        run(cpc1_root, exp, "MSBGEar.ahr=10", f"path.msbg_output_dir={exp_ref / 'msbg'}")


# --------------------------------------------------------------------------------------------
# bad input: one clear error, before any long work
# --------------------------------------------------------------------------------------------
def _drop_listener(root: Path) -> None:
    path = root / "clarity_CPC1_data_test" / "metadata" / "listeners.CPC1_all.json"
    listeners = json.loads(path.read_text())
    del listeners["L0001"]
    path.write_text(json.dumps(listeners))


def _rewrite_wav(path: Path, sample_rate: int, n_channels: int, n_samples: int = 99225) -> None:
    sf.write(path, np.zeros((n_samples, n_channels)), sample_rate, subtype="FLOAT")


HA_TRAIN = "clarity_CPC1_data_train/clarity_data/HA_outputs/train"
SCENES_TEST = "clarity_CPC1_data_test/clarity_data/scenes"
BAD_INPUTS = {
    "missing signal wav": (
        lambda r: (r / HA_TRAIN / "S00104_L0002_E001.wav").unlink(),
        FileNotFoundError,
        r"1 input WAV file\(s\) not found: .*S00104_L0002_E001",
    ),
    "listener missing": (
        _drop_listener,
        ValueError,
        r"missing from .*listeners\.CPC1_all\.json: \['L0001'\]",
    ),
    "wrong sample rate": (
        lambda r: _rewrite_wav(r / HA_TRAIN / "S00101_L0001_E001.wav", 48000, 2),
        ValueError,
        r"S00101_L0001_E001\.wav: sample rate is 48000 Hz, expected 44100",
    ),
    "wrong channels": (
        lambda r: _rewrite_wav(r / SCENES_TEST / "S00201_target_anechoic.wav", 44100, 1),
        ValueError,
        r"S00201_target_anechoic\.wav: has 1 channel\(s\), expected 2",
    ),
    "too short": (
        lambda r: _rewrite_wav(r / HA_TRAIN / "S00101_L0001_E001.wav", 44100, 2, 44100),
        ValueError,
        r"is 1\.000 s long, expected more than the 2\.0 s",
    ),
    "malformed json": (
        lambda r: (r / "clarity_CPC1_data_train/metadata/CPC1.train.json").write_text(
            '[{"signal": "S00101_L0001_E001",'
        ),
        ValueError,
        r"CPC1\.train\.json is not valid JSON",
    ),
    "record lacks prompt": (
        lambda r: (r / "clarity_CPC1_data_test/metadata/CPC1.test.json").write_text(
            '[{"signal": "a", "scene": "b", "listener": "L0001"}]'
        ),
        ValueError,
        r"CPC1\.test\.json: record 0 lacks .*'prompt'",
    ),
    "missing test archive": (
        lambda r: shutil.rmtree(r / "clarity_CPC1_data_test"),
        FileNotFoundError,
        r"expected the folder .*clarity_CPC1_data_test .*" r"contains \['clarity_CPC1_data_train'\]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_early_with_a_clear_error(case, cpc1_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    damage, error, message = BAD_INPUTS[case]
    damage(root)
    with pytest.raises(error, match=message):
        run(root, tmp_path / "exp")
    assert not (tmp_path / "exp" / "msbg").exists()  # nothing long started


@pytest.mark.parametrize(
    "override, message",
    [
        ("cpc1_track=both", "cpc1_track must be 'closed' or 'open', got 'both'"),
        ("stage=everything", "stage must be one of"),
        ("shard_index=2", "0 <= shard_index < num_shards"),
        ("wav_subtype=PCM_24", "wav_subtype must be one of"),
        ("resampler=sinc_best", "resampler must be one of"),
    ],
)
def test_bad_options(cpc1_root, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        run(cpc1_root, tmp_path / "exp", override)


def test_wrong_root_names_expected_folder(tmp_path):
    (tmp_path / "downloads" / "clarity_CPC1_data.v1_1").mkdir(parents=True)
    with pytest.raises(
        FileNotFoundError,
        match=r"path\.root=.*downloads: expected the folder "
        r".*clarity_CPC1_data_train .*contains \['clarity_CPC1_data\.v1_1'\]",
    ):
        run(tmp_path / "downloads", tmp_path / "downloads" / "e032")
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist"):
        run(tmp_path / "nowhere", tmp_path / "exp")


def test_cli_reports_a_wrong_root(tmp_path):
    import subprocess
    import sys

    (tmp_path / "tmp").mkdir()
    result = subprocess.run(
        [sys.executable, str(REPO / "prepare_data.py"), f"path.root={tmp_path / 'nowhere'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
    )
    assert result.returncode != 0
    assert "expected the folder" in result.stderr and "clarity_CPC1_data_train" in result.stderr
    # Hydra's log went to the temp folder, not into a <typo>/e032/hydra/ it would have created
    assert not (tmp_path / "nowhere").exists()
    assert list((tmp_path / "tmp" / "e032-hydra").glob("*/prepare_data.log"))


# --------------------------------------------------------------------------------------------
# the embedded mini-CPC1 (tiny preset): the open track on the real layout, on all cores
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # ~20 CPU-s of MSBG (25 signals of ~5 s)
def test_tiny_mini_cpc1_open_track(tiny_cpc1_root, tmp_path):
    exp = tmp_path / "exp"
    run(tiny_cpc1_root, exp, "cpc1_track=open", "num_workers=0")
    metadata = {
        split: json.loads(
            (
                tiny_cpc1_root / f"clarity_CPC1_data_{split}" / "metadata" / f"CPC1.{split}_indep.json"
            ).read_text()
        )
        for split in ("train", "test")
    }
    dev = set(json.loads((exp / "data_split" / "scene_dev_list_indep.json").read_text()))
    scenes = {r["scene"] for r in metadata["train"]}
    assert len(dev) == int(len(scenes) * 0.3) and dev < scenes
    asr = exp / "cpc1_asr_data_indep"
    for part in ("train", "dev", "test"):
        records = expected_parts(metadata, dev, part)
        for kind in ("msbg", "ref"):
            rows = read_csv(asr / f"right_{part}_{kind}.csv")
            assert [r["ID"] for r in rows] == [r["signal"] for r in records]
            assert all(
                (asr / r["wav"].removeprefix("$data_root/")).is_file() and float(r["duration"]) > 0
                for r in rows
            )
    n_signals = len(metadata["train"]) + len(metadata["test"])
    assert len(list((exp / "msbg").rglob("*_HL-output.wav"))) == n_signals


def expected_parts(metadata: dict, dev: set, part: str) -> list[dict]:
    if part == "test":
        return metadata["test"]
    return [r for r in metadata["train"] if (r["scene"] in dev) == (part == "dev")]
