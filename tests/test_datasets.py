"""Tests of the dataset interface (e032/datasets.py) and the mini generator's CPC2/CPC3 layouts.

Hand-built layouts (a few JSON records and 32 kHz WAVs of 2.2 s) test the readers and each error
without TTS; a micro generation per layout (needs espeak-ng and flite) tests the generator and
reads it back. ``tiny_cpc1_root`` (tests/conftest.py) checks CPC1 against the existing readers and
the generator's default output against the digest stored before the --layout option existed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from e032.cpc1_inputs import load_records
from e032.datasets import (
    CPC3_SEVERITY_AUDIOGRAMS_DB_HL,
    SUBMISSION_HEADER,
    SignalRecord,
    disjoint_fit_indices,
    open_dataset,
    severity_audiograms,
)
from e032.minicpc1.generator import generate
from e032.minicpc1.layouts import generate_layout, severity_of
from e032.minicpc1.presets import PRESETS
from e032.tracks import TrackPaths

REPO = Path(__file__).resolve().parents[1]
DIGEST = REPO / "tests" / "data" / "mini_layouts" / "tiny_cpc1_digest.json"
GENERATED_TOPS = (
    "clarity_CPC1_data_train",
    "clarity_CPC1_data_test",
    "test_listener_responses",
    "latent",
    "clean_corpus",
)
TTS_MISSING = [p for p in ("espeak-ng", "flite") if shutil.which(p) is None]
needs_tts = pytest.mark.skipif(bool(TTS_MISSING), reason=f"needs the TTS programs {TTS_MISSING}")
# 4 training scenes: CEC1 gets S08501-2, CEC2 S08502-3 (S08502 in both); 3 test scenes
MICRO = PRESETS["tiny"].replace(
    n_train_scenes=4,
    n_test_scenes=3,
    signals_per_scene=2,
    n_listeners=4,
    n_babble_sentences=4,
    n_clean_train=3,
    n_clean_valid=1,
    num_workers=1,
)
SAMPLE_RATE = 32000
AUDIO_S = 2.2  # > the 2 s CEC1 trim + the ASR minimum


# ------------------------------------------------------------------------------------------
# hand-built layouts


def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.1, (int(AUDIO_S * SAMPLE_RATE), 2))
    sf.write(path, noise, SAMPLE_RATE, subtype="PCM_16")


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4), encoding="utf-8")


def _cpc2_record(scene: str, listener: str, system: str, correctness: float) -> dict:
    return {
        "prompt": "a short prompt",
        "scene": scene,
        "n_words": 3,
        "hits": 1,
        "listener": listener,
        "system": system,
        "correctness": correctness,
        "response": "a",
        "volume": 50,
        "signal": f"{scene}_{listener}_{system}",
    }


@pytest.fixture()
def cpc2_root(tmp_path: Path) -> Path:
    """CPC2 v1_1 with scene S08501 in both CEC1 and CEC2 (different audio) and one eval signal."""
    data = tmp_path / "clarity_CPC2_data" / "clarity_data"
    meta = data / "metadata"
    audiogram = {
        "audiogram_cfs": [250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
        "audiogram_levels_l": [10, 20, 30, 40, 50, 60, 70, 80],
        "audiogram_levels_r": [15, 20, 30, 40, 50, 60, 70, 75],
    }
    _json(
        meta / "listeners.json",
        {"L0201": {"name": "L0201", **audiogram}, "L0202": {"name": "L0202", **audiogram}},
    )
    _json(meta / "CEC1.train.1.json", [_cpc2_record("S08501", "L0201", "E001", 100.0)])
    _json(meta / "CEC2.train.1.json", [_cpc2_record("S08501", "L0201", "E001", 25.0)])
    _json(meta / "CEC2.test.1.json", [_cpc2_record("S08600", "L0202", "E002", 50.0)])
    for i, (subset, scene, signal) in enumerate(
        [
            ("CEC1", "S08501", "S08501_L0201_E001"),
            ("CEC2", "S08501", "S08501_L0201_E001"),
            ("CEC2", "S08600", "S08600_L0202_E002"),
        ]
    ):
        _wav(data / "HA_outputs" / "signals" / subset / f"{signal}.wav", seed=i)
        _wav(data / "scenes" / subset / f"{scene}_target_ref.wav", seed=10 + i)
    return tmp_path


@pytest.fixture()
def cpc3_root(tmp_path: Path) -> Path:
    """CPC3 with scene S09000 in both CEC1 and CEC2, and one dev signal (hashed ID)."""
    data = tmp_path / "clarity_CPC3_data" / "clarity_data"
    meta = data / "metadata"
    (meta).mkdir(parents=True)
    (meta / "listeners.csv").write_text("listener_id,severity\nL0201,Moderate\n", encoding="utf-8")
    train = [
        {
            "signal": f"{c}_E001_S09000_L0201",
            "prompt": "p q",
            "response": "p",
            "n_words": 2,
            "words_correct": 1,
            "correctness": 50.0,
        }
        for c in ("CEC1", "CEC2")
    ]
    _json(meta / "CPC3.train.json", train)
    _json(
        meta / "CPC3.dev.json",
        [{"signal": "0123456789abcdef01234567", "prompt": "p q", "n_words": 2, "hearing_loss": "Mild"}],
    )
    for i, c in enumerate(("CEC1", "CEC2")):
        _wav(data / "train" / "signals" / f"{c}_E001_S09000_L0201.wav", seed=i)
        _wav(data / "train" / "references" / f"{c}_S09000_ref.wav", seed=10 + i)
    _wav(data / "dev" / "signals" / "0123456789abcdef01234567.wav", seed=20)
    _wav(data / "dev" / "references" / "0123456789abcdef01234567_ref.wav", seed=21)
    return tmp_path


def test_unknown_dataset_split_and_track_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'cpc4'.*\['cpc1', 'cpc2', 'cpc3'\]"):
        open_dataset("cpc4", tmp_path, "train")
    with pytest.raises(ValueError, match=r"cpc2 has no split 'train'.*train\.1"):
        open_dataset("cpc2", tmp_path, "train")
    with pytest.raises(ValueError, match=r"cpc3 has no split 'test'.*'dev'"):
        open_dataset("cpc3", tmp_path, "test")
    with pytest.raises(ValueError, match="track must be 'closed' or 'open', got 'indep'"):
        open_dataset("cpc1", tmp_path, "train", track="indep")
    with pytest.raises(FileNotFoundError, match=r"CEC1\.train\.2\.json or .*CEC2\.train\.2\.json"):
        open_dataset("cpc2", tmp_path, "train.2").records()
    with pytest.raises(FileNotFoundError, match=r"response list not found: .*CPC3\.eval\.json"):
        open_dataset("cpc3", tmp_path, "eval").records()


def test_cpc2_same_scene_in_cec1_and_cec2_stays_apart(cpc2_root: Path) -> None:
    ds = open_dataset("cpc2", cpc2_root, "train.1")
    records = ds.records()
    assert [r.key for r in records] == [("CEC1", "S08501_L0201_E001"), ("CEC2", "S08501_L0201_E001")]
    assert [r.scene_key for r in records] == [("CEC1", "S08501"), ("CEC2", "S08501")]
    assert [ds.reference_key(r) for r in records] == [("CEC1", "S08501"), ("CEC2", "S08501")]
    ha = [ds.ha_output_wav(r) for r in records]
    refs = [ds.reference_wav(r) for r in records]
    assert ha[0] != ha[1] and refs[0] != refs[1]
    assert refs[0].parent.name == "CEC1" and refs[1].name == "S08501_target_ref.wav"
    assert ha[0].read_bytes() != ha[1].read_bytes() and refs[0].read_bytes() != refs[1].read_bytes()
    assert [r.correctness for r in records] == [100.0, 25.0]
    assert ds.check_files(records) == 4
    assert ds.resolved_layout() == "v1_1"
    assert ds.audiograms(records[0]).right_db_hl[-1] == 75.0


def test_cpc2_eval_split_and_labels(cpc2_root: Path, tmp_path: Path) -> None:
    ds = open_dataset("cpc2", cpc2_root, "eval.1")
    (record,) = ds.records()
    assert record.key == ("CEC2", "S08600_L0202_E002")
    assert ds.submission("E032").file_name == "CPC2_E032.1.csv"
    labels = tmp_path / "labels"
    _json(labels / "CEC2.test.1.json", [_cpc2_record("S08600", "L0202", "E002", 62.5)])
    meta = cpc2_root / "clarity_CPC2_data" / "clarity_data" / "metadata" / "CEC2.test.1.json"
    _json(
        meta,
        [
            {
                k: v
                for k, v in _cpc2_record("S08600", "L0202", "E002", 0).items()
                if k not in ("hits", "correctness", "response")
            }
        ],
    )
    assert open_dataset("cpc2", cpc2_root, "eval.1").records()[0].correctness is None
    labelled = open_dataset("cpc2", cpc2_root, "eval.1", labels_dir=labels).records()
    assert labelled[0].correctness == 62.5


def test_cpc2_list_naming_a_missing_file(cpc2_root: Path) -> None:
    ds = open_dataset("cpc2", cpc2_root, "train.1")
    records = ds.records()
    ds.reference_wav(records[1]).unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 input WAV file\(s\) not found: .*/scenes/CEC2/" r"S08501_target_ref\.wav"
    ):
        ds.check_files(records)


def test_cpc2_bad_ids_and_missing_listener(cpc2_root: Path) -> None:
    meta = cpc2_root / "clarity_CPC2_data" / "clarity_data" / "metadata"
    _json(meta / "CEC1.train.1.json", [_cpc2_record("S08501", "L0299", "E001", 0)])
    with pytest.raises(
        ValueError,
        match=r"listener\(s\) of .*CEC1\.train\.1\.json are missing " r"from .*listeners\.json: \['L0299'\]",
    ):
        open_dataset("cpc2", cpc2_root, "train.1").records()
    _json(meta / "CEC1.train.1.json", [_cpc2_record("../x", "L0201", "E001", 0)])
    with pytest.raises(ValueError, match=r"not CPC2 IDs .*scene '\.\./x' does not match"):
        open_dataset("cpc2", cpc2_root, "train.1").records()


def test_cpc2_layout_versions_and_mix_up(cpc2_root: Path) -> None:
    ha = cpc2_root / "clarity_CPC2_data" / "clarity_data" / "HA_outputs"
    with pytest.raises(
        ValueError,
        match=r"layout=v1_0 but .*HA_outputs/train\.1 does not exist " r"\(this root has \['v1_1'\] layout\)",
    ):
        open_dataset("cpc2", cpc2_root, "train.1", cpc2_layout="v1_0").resolved_layout()
    # a v1_0 output copied in beside v1_1's folders, one v1_1 output missing: a mixed-up root
    (ha / "train.1" / "CEC2").mkdir(parents=True)
    (ha / "signals" / "CEC2" / "S08501_L0201_E001.wav").rename(
        ha / "train.1" / "CEC2" / "S08501_L0201_E001.wav"
    )
    ds = open_dataset("cpc2", cpc2_root, "train.1")
    with pytest.raises(
        ValueError,
        match=r"layout v1_1 is in use but 1 HA output\(s\) are only in "
        r"the v1_0 folders .*mixes CPC2 v1_0 and v1_1",
    ):
        ds.check_files(ds.records())
    # a pure v1_0 root: auto picks it for train.N; eval has no v1_0 location
    (ha / "train.1" / "CEC1").mkdir()
    (ha / "signals" / "CEC1" / "S08501_L0201_E001.wav").rename(
        ha / "train.1" / "CEC1" / "S08501_L0201_E001.wav"
    )
    shutil.rmtree(ha / "signals")
    ds = open_dataset("cpc2", cpc2_root, "train.1")
    assert ds.resolved_layout() == "v1_0" and ds.check_files(ds.records()) == 4
    with pytest.raises(ValueError, match=r"eval\.1: evaluation outputs are read from .*/CEC2"):
        open_dataset("cpc2", cpc2_root, "eval.1").resolved_layout()
    shutil.rmtree(ha)
    with pytest.raises(FileNotFoundError, match=r"neither signals/ \(CPC2 v1_1\) nor train\.1/"):
        open_dataset("cpc2", cpc2_root, "train.1").resolved_layout()


def test_cpc3_train_collision_dev_hashes_and_audiograms(cpc3_root: Path) -> None:
    train = open_dataset("cpc3", cpc3_root, "train")
    records = train.records()
    assert [(r.subset, r.scene, r.listener, r.system) for r in records] == [
        ("CEC1", "S09000", "L0201", "E001"),
        ("CEC2", "S09000", "L0201", "E001"),
    ]
    assert {train.reference_key(r) for r in records} == {("CEC1", "S09000"), ("CEC2", "S09000")}
    assert [train.reference_wav(r).name for r in records] == ["CEC1_S09000_ref.wav", "CEC2_S09000_ref.wav"]
    assert train.check_files(records) == 4
    assert train.audiograms(records[0]).left_db_hl == (20, 20, 25, 35, 40, 45, 50, 55)
    dev = open_dataset("cpc3", cpc3_root, "dev")
    (record,) = dev.records()
    assert (record.subset, record.scene, record.severity) == ("CEC3", None, "Mild")
    assert dev.reference_key(record) == ("CEC3", "0123456789abcdef01234567")
    assert dev.reference_wav(record).name == "0123456789abcdef01234567_ref.wav"
    assert dev.audiograms(record).right_db_hl == CPC3_SEVERITY_AUDIOGRAMS_DB_HL["Mild"]
    assert dev.check_files([record]) == 2 and dev.trim_s(record) == 1.0
    assert dev.submission("E032").header is None


def test_cpc3_errors_name_file_and_value(cpc3_root: Path) -> None:
    meta = cpc3_root / "clarity_CPC3_data" / "clarity_data" / "metadata"
    dev = json.loads((meta / "CPC3.dev.json").read_text())
    _json(meta / "CPC3.dev.json", [dev[0] | {"hearing_loss": "Severe"}])
    with pytest.raises(
        ValueError,
        match=r"CPC3\.dev\.json: unknown hearing-loss severity "
        r"'Severe'; expected one of \['Mild', 'Moderate'",
    ):
        open_dataset("cpc3", cpc3_root, "dev").records()
    _json(meta / "CPC3.dev.json", [dev[0] | {"signal": "CEC2_E001_S09000_L0201"}])
    with pytest.raises(ValueError, match="is not a 24-digit hexadecimal ID"):
        open_dataset("cpc3", cpc3_root, "dev").records()
    (meta / "listeners.csv").write_text("listener_id,severity\nL0299,Mild\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"listener L0201 of signal CEC1_E001_S09000_L0201 is not " r"in listeners\.csv"
    ):
        open_dataset("cpc3", cpc3_root, "train").records()
    _json(meta / "CPC3.eval.json", [dev[0]])
    ds = open_dataset("cpc3", cpc3_root, "eval")
    with pytest.raises(
        FileNotFoundError,
        match=r"lists 1 signals but .*clarity_data/eval does not "
        r"exist; unpack clarity_CPC3_data\.eval\.v1_0",
    ):
        ds.check_files(ds.records())


def test_description_tables() -> None:
    expected = {"cpc1": (44100, 120.0), "cpc2": (32000, 100.0), "cpc3": (32000, 100.0)}
    splits = {"cpc1": "test", "cpc2": "eval.3", "cpc3": "eval"}
    names = {"cpc1": "CPC1_E032.test.csv", "cpc2": "CPC2_E032.3.csv", "cpc3": "CPC3_E032.csv"}
    for name, (rate, level) in expected.items():
        ds = open_dataset(name, "/nowhere", splits[name])
        assert (ds.sample_rate, ds.msbg_level_db_spl, ds.msbg_sample_rate) == (rate, level, 44100)
        submission = ds.submission("E032")
        assert (submission.file_name, submission.header) == (names[name], SUBMISSION_HEADER)
    open_track = open_dataset("cpc1", "/nowhere", "test", track="open")
    assert open_track.submission("E032").file_name == "CPC1_E032.test_indep.csv"
    with pytest.raises(ValueError, match=r"cpc2 split 'train\.1' has no submission.*eval\.1"):
        open_dataset("cpc2", "/nowhere", "train.1").submission("E032")
    with pytest.raises(ValueError, match="team ID '../x' must be letters and digits"):
        open_dataset("cpc3", "/nowhere", "eval").submission("../x")
    trims = {
        subset: open_dataset("cpc3", "/nowhere", "train").trim_s(
            SignalRecord(subset, "s", None, None, None, "p")
        )
        for subset in ("CEC1", "CEC2", "CEC3")
    }
    assert trims == {"CEC1": 2.0, "CEC2": 1.0, "CEC3": 1.0}
    assert severity_audiograms("Moderately severe").left_db_hl == (19, 28, 40, 52, 56, 58, 58, 63)
    assert severity_audiograms("Moderate").frequencies_hz == (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)


def test_disjoint_fit_indices_follow_pyclarity() -> None:
    rows = [("CEC1", "L1", "E1"), ("CEC2", "L2", "E1"), ("CEC1", "L2", "E1"), ("CEC1", "L3", "E2")]
    records = [SignalRecord(s, f"sig{i}", "S1", lis, sy, "p") for i, (s, lis, sy) in enumerate(rows)]
    assert disjoint_fit_indices(records, 0) == [1, 3]  # E1 of CEC2 is another system
    hidden = SignalRecord("CEC3", "abc", None, None, None, "p")
    assert disjoint_fit_indices([*records, hidden], 4) == [0, 1, 2, 3]


def test_severity_of_follows_who_grades() -> None:
    assert severity_of({"audiogram_levels_l": [0] * 8, "audiogram_levels_r": [0] * 8}) == "Mild"
    worse = {"audiogram_levels_l": [60] * 8, "audiogram_levels_r": [55] * 8}
    assert severity_of(worse) == "Moderately severe"
    assert severity_of({"audiogram_levels_l": [49] * 8, "audiogram_levels_r": [80] * 8}) == ("Moderate")


# ------------------------------------------------------------------------------------------
# CPC1 through the existing readers; the default generation unchanged


def test_cpc1_reads_through_the_existing_readers(tiny_cpc1_root: Path) -> None:
    root = tiny_cpc1_root
    for track, suffix in (("closed", ""), ("open", "_indep")):
        paths = TrackPaths(
            track,
            suffix,
            root / "clarity_CPC1_data_train",
            root / "clarity_CPC1_data_test",
            root / "e032",
            root / "test_listener_responses",
        )
        for split in ("train", "test"):
            ds = open_dataset("cpc1", root, split, track=track)
            records = ds.records()
            raw = load_records(paths.responses_json(split))
            assert [r.signal for r in records] == [r["signal"] for r in raw]
            assert {r.subset for r in records} == {"CPC1"}
            assert all(r.correctness is not None for r in records)  # test labels joined
            assert ds.ha_output_wav(records[0]) == paths.ha_output_wav(split, records[0].signal)
            assert ds.reference_wav(records[0]) == paths.target_wav(split, str(records[0].scene))
            assert ds.check_files(records) == len(records) + len({r.scene for r in records})
            listeners = json.loads(paths.listeners_json(split).read_text())
            first = listeners[str(records[0].listener)]
            assert list(ds.audiograms(records[0]).left_db_hl) == first["audiogram_levels_l"]


def _tts_versions() -> dict[str, str]:
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    flite = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
    return {
        "espeak-ng": re.search(r"(\d+\.\d+)", espeak).group(1),
        "flite": re.search(r"flite-(\d+\.\d+)", flite).group(1),
    }


def _digest(root: Path) -> tuple[int, str]:
    digest, n_files = hashlib.sha256(), 0
    for top in GENERATED_TOPS:
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                name = path.relative_to(root).as_posix().encode()
                digest.update(name + b"\0" + hashlib.sha256(path.read_bytes()).digest())
                n_files += 1
    return n_files, digest.hexdigest()


@needs_tts
def test_default_cpc1_generation_is_byte_identical_to_before(tiny_cpc1_root: Path) -> None:
    stored = json.loads(DIGEST.read_text())
    if _tts_versions() != stored["tts_versions"]:
        pytest.skip(f"TTS versions {_tts_versions()} differ from {stored['tts_versions']}")
    assert _digest(tiny_cpc1_root) == (stored["n_files"], stored["sha256"])


@needs_tts
def test_layout_cpc1_is_generate_itself(tmp_path: Path) -> None:
    micro = MICRO.replace(n_train_scenes=2, n_test_scenes=2)
    generate(micro, tmp_path / "a")
    summary = generate_layout(micro, tmp_path / "b", "cpc1")
    assert summary["layout"] == "cpc1" and _digest(tmp_path / "a") == _digest(tmp_path / "b")
    with pytest.raises(ValueError, match=r"unknown layout 'cpc4'; expected one of"):
        generate_layout(micro, tmp_path / "c", "cpc4")


# ------------------------------------------------------------------------------------------
# generated CPC2 and CPC3 layouts


@pytest.fixture(scope="module")
def micro_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if TTS_MISSING:
        pytest.skip(f"needs the TTS programs {TTS_MISSING}")
    roots = {}
    for layout in ("cpc2", "cpc3"):
        roots[layout] = tmp_path_factory.mktemp(f"mini_{layout}")
        generate_layout(MICRO, roots[layout], layout)
    return roots


def _formats(files) -> set[tuple[int, int, str]]:
    return {(sf.info(p).samplerate, sf.info(p).channels, sf.info(p).subtype) for p in files}


def test_generated_cpc2_layout(micro_layouts: dict[str, Path]) -> None:
    root = micro_layouts["cpc2"]
    data = root / "clarity_CPC2_data" / "clarity_data"
    names = sorted(p.name for p in (data / "metadata").iterdir())
    assert names == sorted(
        [f"CEC{c}.train.{n}.json" for c in (1, 2) for n in (1, 2, 3)]
        + [f"CEC2.test.{n}.json" for n in (1, 2, 3)]
        + ["listeners.json"]
    )
    assert _formats(data.rglob("*.wav")) == {(32000, 2, "PCM_16")}
    scenes1 = {p.name for p in (data / "scenes" / "CEC1").iterdir()}
    scenes2 = {p.name for p in (data / "scenes" / "CEC2").iterdir()}
    both = scenes1 & scenes2
    assert both == {"S08502_target_ref.wav"}
    assert all(
        (data / "scenes" / "CEC1" / n).read_bytes() != (data / "scenes" / "CEC2" / n).read_bytes()
        for n in both
    )
    eval_signals = []
    for n in (1, 2, 3):
        train = open_dataset("cpc2", root, f"train.{n}").records()
        ev = open_dataset("cpc2", root, f"eval.{n}", labels_dir=root / "labels").records()
        assert {r.listener for r in train}.isdisjoint({r.listener for r in ev})
        assert {r.subset for r in train} == {"CEC1", "CEC2"} and {r.subset for r in ev} <= {"CEC2"}
        assert all(r.correctness is not None for r in ev)
        assert open_dataset("cpc2", root, f"train.{n}").check_files(train) > 0
        eval_signals += [r.signal for r in ev]
    n_test = MICRO.n_test_scenes * MICRO.signals_per_scene  # each test signal in one eval.N
    assert len(eval_signals) == len(set(eval_signals)) == n_test
    unlabelled = json.loads((data / "metadata" / "CEC2.test.1.json").read_text())
    assert unlabelled and not {"hits", "correctness", "response"} & set(unlabelled[0])


def test_generated_cpc3_layout(micro_layouts: dict[str, Path]) -> None:
    root = micro_layouts["cpc3"]
    data = root / "clarity_CPC3_data" / "clarity_data"
    assert sorted(p.name for p in (data / "metadata").iterdir()) == [
        "CPC3.dev.json",
        "CPC3.eval.json",
        "CPC3.train.json",
        "listeners.csv",
    ]
    assert _formats(data.rglob("*.wav")) == {(32000, 2, "PCM_16")}
    assert (data / "metadata" / "listeners.csv").read_text().startswith("listener_id,severity\n")
    train = json.loads((data / "metadata" / "CPC3.train.json").read_text())
    assert list(train[0]) == ["signal", "prompt", "response", "n_words", "words_correct", "correctness"]
    dev = json.loads((data / "metadata" / "CPC3.dev.json").read_text())
    assert list(dev[0]) == ["signal", "prompt", "n_words", "hearing_loss"]
    refs = {p.name for p in (data / "train" / "references").iterdir()}
    assert {"CEC1_S08502_ref.wav", "CEC2_S08502_ref.wav"} <= refs
    for split in ("train", "dev", "eval"):
        ds = open_dataset("cpc3", root, split, labels_dir=root / "labels")
        records = ds.records()
        assert records and ds.check_files(records) > 0
        assert all(r.correctness is not None for r in records)
        if split != "train":
            assert all(re.fullmatch(r"[0-9a-f]{24}", r.signal) for r in records)


@needs_tts
def test_generated_layout_is_reused_and_deterministic(micro_layouts: dict[str, Path], tmp_path: Path) -> None:
    root = micro_layouts["cpc3"]
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    summary = generate_layout(MICRO, root, "cpc3")
    assert summary["reused"] and not (root / ".cpc1_source").exists()
    again = generate_layout(MICRO, tmp_path / "again", "cpc3")
    assert not again["reused"]
    tree = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    other = {
        p.relative_to(tmp_path / "again").as_posix(): p.read_bytes()
        for p in (tmp_path / "again").rglob("*")
        if p.is_file()
    }
    assert sorted(tree) == before and tree == other


@needs_tts
def test_cli_layout_option(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "demo" / "make_mini_cpc1.py"),
            "--root",
            str(tmp_path / "c2"),
            "--preset",
            "tiny",
            "--layout",
            "cpc2",
            "--n-train-scenes",
            "2",
            "--n-test-scenes",
            "1",
            "--signals-per-scene",
            "1",
            "--n-listeners",
            "3",
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
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mini-CPC2 'tiny' (seed 0)") and "CEC2.test." in result.stdout
    assert (tmp_path / "c2" / "clarity_CPC2_data" / "clarity_data" / "metadata").is_dir()
