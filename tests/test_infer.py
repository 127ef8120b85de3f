"""Tests of infer.py on a small synthetic experiment with the tiny oracle checkpoint.

The experiment folder has the layout prepare_data.py and train_asr.py produce: ``<exp>/asr/save/CKPT+*``
and the CSVs of ``<exp>/cpc1_asr_data/`` pointing at mono 16 kHz files (cut from the oracle inputs).
A beam of 8 keeps the searches short; the faithful search settings are checked in test_asr_oracle.py.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir

import infer
from e032 import inference
from e032.similarity import decoder_similarity, encoder_similarity
from tests.tiny_asr import TINY_ASR_SIZES

torch.set_num_threads(1)


REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "asr_reference"
TINY = {**TINY_ASR_SIZES, "test_beam_size": 8}
N = 12000  # samples per file (0.75 s)
# signal -> (scene, left_proc source, right_proc source); sources are (input, offset)
SIGNALS = {
    "dev": {
        "S001_L01_E01": ("S001", ("in1_A_left_proc", 0), ("in3_A_right_proc", 0)),
        "S002_L01_E01": ("S002", ("in4_B", 0), ("in5_C", 4000)),
        "S001_L02_E02": ("S001", ("in5_C", 20000), ("in1_A_left_proc", 14000)),
    },
    "test": {"S003_L03_E01": ("S003", ("in3_A_right_proc", 9000), ("in4_B", 2000))},
}
REFERENCES = {
    "S001": (("in0_A_left_ref", 0), ("in2_A_right_ref", 0)),
    "S002": (("in5_C", 0), ("in5_C", 30000)),
    "S003": (("in2_A_right_ref", 9000), ("in0_A_left_ref", 9000)),
}


def _wav(path: Path, source: tuple[str, int]) -> Path:
    name, offset = source
    samples = np.load(DATA / "oracle" / f"{name}.npz")["wav"][offset : offset + N]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, 16000, subtype="PCM_16")
    return path


def make_experiment(root: Path) -> Path:
    """Synthetic ``path.root`` with ``e032/asr/save`` and the CSVs of both parts; returns root."""
    exp = root / "e032"
    shutil.copytree(DATA / "tiny_ckpt" / "save", exp / "asr" / "save")
    data = exp / "cpc1_asr_data"
    for part, signals in SIGNALS.items():
        rows = {(ear, kind): [] for ear in ("left", "right") for kind in ("msbg", "ref")}
        for signal, (scene, left, right) in signals.items():
            for ear, source in (("left", left), ("right", right)):
                wav = _wav(data / f"{part}_{ear}_msbg" / f"{signal}.wav", source)
                rows[(ear, "msbg")].append([signal, "0.75", str(wav), "L0001", "HELLO"])
            for ear, source in zip(("left", "right"), REFERENCES[scene], strict=True):
                wav = _wav(data / f"{part}_{ear}_ref" / f"{scene}.wav", source)
                rows[(ear, "ref")].append([signal, "0.75", str(wav), "L0001", "HELLO"])
        for (ear, kind), table in rows.items():
            with open(data / f"{ear}_{part}_{kind}.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["ID", "duration", "wav", "spk_id", "wrd"])
                writer.writerows(table)
    return root


def make_cfg(root: Path, *overrides: str):
    tiny = "{" + ", ".join(f"{k}: {v}" for k, v in TINY.items()).replace("'", "") + "}"
    with initialize_config_dir(config_dir=str(REPO), version_base=None):
        return compose(
            "config",
            overrides=[
                f"path.root={root}",
                f"asr_overrides={tiny}",
                "device=cpu",
                "progress=false",
                *overrides,
            ],
        )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = make_experiment(tmp_path_factory.mktemp("infer"))
    infer.main(make_cfg(root))
    assert torch.is_grad_enabled()  # main() must not switch autograd off for its caller
    return root


@pytest.fixture(scope="module")
def asr(experiment):
    cfg = make_cfg(experiment)
    return infer.asr_from_config(cfg, infer.resolve_track(cfg))


def test_outputs_hold_the_similarities_of_the_api(experiment, asr):
    exp = experiment / "e032"
    for part, signals in SIGNALS.items():
        enc = json.loads((exp / f"{part}_enc_similarity.json").read_text())
        dec = json.loads((exp / f"{part}_dec_similarity.json").read_text())
        assert list(enc) == list(dec) == list(signals)  # CSV order
    # one signal recomputed through the Python API, one file at a time
    table = {s.signal: s for s in infer.signal_table(infer.resolve_track(make_cfg(experiment)), "dev")}
    files = table["S002_L01_E01"]
    reps = [
        asr.represent(infer.read_mono(p))
        for p in (files.left_proc, files.right_proc, files.left_ref, files.right_ref)
    ]
    enc = json.loads((exp / "dev_enc_similarity.json").read_text())["S002_L01_E01"]
    dec = json.loads((exp / "dev_dec_similarity.json").read_text())["S002_L01_E01"]
    assert enc == pytest.approx(encoder_similarity(*(r.enc for r in reps)), abs=1e-6)
    assert dec == pytest.approx(decoder_similarity(*(r.dec for r in reps)), abs=1e-6)
    assert -1.0 <= enc <= 1.0 and -1.0 <= dec <= 1.0


def test_references_are_computed_once_per_scene(experiment, asr, tmp_path, monkeypatch):
    calls = []
    original = inference.pair_representations

    def counting(model, left, right):
        calls.append((left.name, right.name))
        return original(model, left, right)

    monkeypatch.setattr(inference, "pair_representations", counting)
    signals = infer.signal_table(infer.resolve_track(make_cfg(experiment)), "dev")
    infer.compute_part(asr, signals, tmp_path / "enc.json", tmp_path / "dec.json")
    refs = [c for c in calls if c[0].startswith("S00") and "_L" not in c[0]]
    assert sorted(refs) == [("S001.wav", "S001.wav"), ("S002.wav", "S002.wav")]  # 2 scenes, 3 signals
    assert len(calls) == 2 + 3


def test_resume_after_a_kill_gives_identical_files(experiment, asr, tmp_path):
    signals = infer.signal_table(infer.resolve_track(make_cfg(experiment)), "dev")
    done = []

    def killer(signal):
        done.append(signal)
        if len(done) == 2:
            raise KeyboardInterrupt

    enc_json, dec_json = tmp_path / "enc.json", tmp_path / "dec.json"
    with pytest.raises(KeyboardInterrupt):
        infer.compute_part(asr, signals, enc_json, dec_json, flush_every=1, on_signal=killer)
    assert len(json.loads(enc_json.read_text())) == 1  # flushed before the 2nd signal was written
    resumed = []
    infer.compute_part(asr, signals, enc_json, dec_json, flush_every=1, on_signal=resumed.append)
    assert len(resumed) == 2  # the flushed signal was skipped
    exp = experiment / "e032"
    assert enc_json.read_bytes() == (exp / "dev_enc_similarity.json").read_bytes()
    assert dec_json.read_bytes() == (exp / "dev_dec_similarity.json").read_bytes()


def test_rerun_is_a_no_op(experiment, asr):
    exp = experiment / "e032"
    before = (exp / "test_dec_similarity.json").read_bytes()
    calls = []
    signals = infer.signal_table(infer.resolve_track(make_cfg(experiment)), "test")
    infer.compute_part(
        asr,
        signals,
        exp / "test_enc_similarity.json",
        exp / "test_dec_similarity.json",
        on_signal=calls.append,
    )
    assert calls == [] and (exp / "test_dec_similarity.json").read_bytes() == before


def test_missing_model_checkpoint_is_a_clear_error(experiment):
    with pytest.raises(FileNotFoundError, match="ASR checkpoint folder not found"):
        infer.main(make_cfg(experiment, f"asr_output_folder={experiment / 'no_such_asr'}"))


def test_csv_listing_a_missing_file_is_a_clear_error(tmp_path):
    root = make_experiment(tmp_path)
    victim = root / "e032" / "cpc1_asr_data" / "dev_right_ref" / "S002.wav"
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=r"S002\.wav listed in .*right_dev_ref\.csv"):
        infer.signal_table(infer.resolve_track(make_cfg(root)), "dev")


def test_open_track_writes_its_own_files(tmp_path):
    cfg = make_cfg(tmp_path, "cpc1_track=open")
    paths = infer.resolve_track(cfg)
    assert paths.similarity_json("dev", "enc").name == "dev_enc_similarity_indep.json"
    with pytest.raises(FileNotFoundError, match="asr_indep"):
        infer.asr_from_config(cfg, paths)


def test_model_sizes_from_an_overrides_file_alone(experiment, asr, tmp_path):
    """The demo's way: sizes in ``asr_overrides_file`` and ``asr_overrides`` left at its default {}."""
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("".join(f"{k}: {v}\n" for k, v in TINY.items()))
    with initialize_config_dir(config_dir=str(REPO), version_base=None):
        cfg = compose(
            "config", overrides=[f"path.root={experiment}", f"asr_overrides_file={sizes}", "device=cpu"]
        )
    assert not cfg.asr_overrides  # the default
    from_file = infer.asr_from_config(cfg, infer.resolve_track(cfg))
    wav = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    np.testing.assert_array_equal(from_file.encode(wav), asr.encode(wav))


# --- outputs tied to their inputs and settings (issue 13) -------------------------------------------
def _clone(experiment: Path, root: Path) -> Path:
    """A new experiment with the same files, and the fixture's outputs and records copied in."""
    make_experiment(root)
    for path in (experiment / "e032").glob("*.json"):
        shutil.copy(path, root / "e032" / path.name)
    return root


def _count_signals(monkeypatch) -> list[str]:
    computed = []
    original = inference.signal_similarities

    def counting(asr, item, *args):
        computed.append(item.signal)
        return original(asr, item, *args)

    monkeypatch.setattr(inference, "signal_similarities", counting)
    return computed


def test_clone_with_identical_files_recomputes_nothing(experiment, tmp_path, monkeypatch):
    root = _clone(experiment, tmp_path / "clone")
    computed = _count_signals(monkeypatch)
    infer.main(make_cfg(root))
    assert computed == []  # other file times, same contents: current
    for name in ("dev_enc_similarity.json", "test_dec_similarity.json"):
        assert (root / "e032" / name).read_bytes() == (experiment / "e032" / name).read_bytes()


@pytest.mark.parametrize(
    "override, change",
    [
        ("dtw=exact", "dtw: stored 'fastdtw', this run 'exact'"),
        (
            "decoder_representation=best_hyp",
            "decoder_representation: stored 'last_step_slot0', this run 'best_hyp'",
        ),
        ("asr_overrides={test_beam_size: 4}", "test_beam_size: stored 8, this run 4"),
    ],
)
def test_changed_setting_is_refused_naming_both_values(experiment, tmp_path, override, change):
    root = _clone(experiment, tmp_path / "clone")
    before = (root / "e032" / "dev_dec_similarity.json").read_bytes()
    cfg = make_cfg(root, override)
    if override.startswith("asr_overrides"):  # make_cfg sets the tiny sizes there: keep them
        cfg.asr_overrides.test_beam_size = 4
    with pytest.raises(ValueError, match=re.escape(change) + r".*delete .*dev_enc_similarity\.json"):
        infer.main(cfg)
    assert (root / "e032" / "dev_dec_similarity.json").read_bytes() == before


def test_changed_input_file_recomputes_that_signal(experiment, asr, tmp_path, monkeypatch):
    root = _clone(experiment, tmp_path / "clone")
    _wav(root / "e032" / "cpc1_asr_data" / "dev_left_msbg" / "S002_L01_E01.wav", ("in1_A_left_proc", 3000))
    computed = _count_signals(monkeypatch)
    infer.main(make_cfg(root))
    assert computed == ["S002_L01_E01"]
    new = json.loads((root / "e032" / "dev_enc_similarity.json").read_text())
    old = json.loads((experiment / "e032" / "dev_enc_similarity.json").read_text())
    assert list(new) == list(old) and new["S001_L01_E01"] == old["S001_L01_E01"]
    assert new["S002_L01_E01"] != old["S002_L01_E01"]


def test_changed_checkpoint_recomputes_every_signal(experiment, tmp_path, monkeypatch):
    root = _clone(experiment, tmp_path / "clone")
    model = next((root / "e032" / "asr" / "save").glob("CKPT+*/model.ckpt"))
    os.utime(model, ns=(1, 1))  # touched only: still the same model
    computed = _count_signals(monkeypatch)
    infer.main(make_cfg(root))
    assert computed == []
    state = torch.load(model, weights_only=True)
    name = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[name] = state[name] + 0.01
    torch.save(state, model)
    infer.main(make_cfg(root))
    assert sorted(computed) == sorted(s for signals in SIGNALS.values() for s in signals)


def test_csvs_of_a_copied_experiment_are_refused(experiment, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(experiment, copy)
    with pytest.raises(
        ValueError,
        match=r"listed in .*left_dev_msbg\.csv is outside this experiment's "
        r".*copy/e032/cpc1_asr_data .*run prepare_data\.py",
    ):
        infer.main(make_cfg(copy))


def test_file_too_short_for_the_asr_is_a_clear_error(tmp_path):
    root = make_experiment(tmp_path)
    short = root / "e032" / "cpc1_asr_data" / "test_left_msbg" / "S003_L03_E01.wav"
    sf.write(short, np.zeros(600), 16000, subtype="PCM_16")
    with pytest.raises(
        ValueError,
        match=r"S003_L03_E01\.wav listed in .*left_test_msbg\.csv is 0\.037 s "
        r"long; the ASR needs at least 0\.1 s",
    ):
        infer.main(make_cfg(root))


def test_asr_refuses_a_waveform_too_short_for_it(asr):
    with pytest.raises(
        ValueError, match=r"waveform 0: 600 samples \(0\.037 s\); the ASR needs at least 0\.1 s"
    ):
        asr.represent(np.zeros(600, np.float32))


def test_moved_experiment_with_data_root_csvs_runs_unchanged(experiment, tmp_path, monkeypatch):
    """CSVs written with ``$data_root`` (as prepare_data.py writes them) follow the folder."""
    moved = tmp_path / "moved"
    shutil.copytree(experiment, moved)
    data = moved / "e032" / "cpc1_asr_data"
    old = str(experiment / "e032" / "cpc1_asr_data")
    for path in data.glob("*.csv"):
        path.write_text(path.read_text().replace(old, "$data_root"))
    assert "$data_root/dev_left_msbg/" in (data / "left_dev_msbg.csv").read_text()
    computed = _count_signals(monkeypatch)
    infer.main(make_cfg(moved))
    assert computed == []  # same files, found through $data_root: outputs current
    for name in ("dev_enc_similarity.json", "test_dec_similarity.json"):
        assert (moved / "e032" / name).read_bytes() == (experiment / "e032" / name).read_bytes()
