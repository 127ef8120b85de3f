"""Tests of infer.py on a small synthetic experiment with the tiny oracle checkpoint.

The experiment folder has the layout prepare_data.py and train_asr.py produce: ``<exp>/asr/save/CKPT+*``
and the CSVs of ``<exp>/cpc1_asr_data/`` pointing at mono 16 kHz files (cut from the oracle inputs).
A beam of 8 keeps the searches short; the faithful search settings are checked in test_asr_oracle.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir

import infer
from e032.similarity import decoder_similarity, encoder_similarity

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "asr_reference"
TINY = {"d_model": 32, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2, "d_ffn": 64,
        "cnn_channels": [8, 16, 16], "transformer_input_size": 320, "output_neurons": 100,
        "test_beam_size": 8}
N = 12000  # samples per file (0.75 s)
# signal -> (scene, left_proc source, right_proc source); sources are (input, offset)
SIGNALS = {
    "dev": {"S001_L01_E01": ("S001", ("in1_A_left_proc", 0), ("in3_A_right_proc", 0)),
            "S002_L01_E01": ("S002", ("in4_B", 0), ("in5_C", 4000)),
            "S001_L02_E02": ("S001", ("in5_C", 20000), ("in1_A_left_proc", 14000))},
    "test": {"S003_L03_E01": ("S003", ("in3_A_right_proc", 9000), ("in4_B", 2000))},
}
REFERENCES = {"S001": (("in0_A_left_ref", 0), ("in2_A_right_ref", 0)),
              "S002": (("in5_C", 0), ("in5_C", 30000)),
              "S003": (("in2_A_right_ref", 9000), ("in0_A_left_ref", 9000))}


def _wav(path: Path, source: tuple[str, int]) -> Path:
    name, offset = source
    samples = np.load(DATA / "oracle" / f"{name}.npz")["wav"][offset:offset + N]
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
        return compose("config", overrides=[f"path.root={root}", f"asr_overrides={tiny}", "device=cpu",
                                            "progress=false", *overrides])


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
    reps = [asr.represent(infer.read_mono(p)) for p in (files.left_proc, files.right_proc, files.left_ref,
                                                         files.right_ref)]
    enc = json.loads((exp / "dev_enc_similarity.json").read_text())["S002_L01_E01"]
    dec = json.loads((exp / "dev_dec_similarity.json").read_text())["S002_L01_E01"]
    assert enc == pytest.approx(encoder_similarity(*(r.enc for r in reps)), abs=1e-6)
    assert dec == pytest.approx(decoder_similarity(*(r.dec for r in reps)), abs=1e-6)
    assert -1.0 <= enc <= 1.0 and -1.0 <= dec <= 1.0


def test_references_are_computed_once_per_scene(experiment, asr, tmp_path, monkeypatch):
    calls = []
    original = infer.pair_representations

    def counting(model, left, right):
        calls.append((left.name, right.name))
        return original(model, left, right)

    monkeypatch.setattr(infer, "pair_representations", counting)
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
    infer.compute_part(asr, signals, exp / "test_enc_similarity.json", exp / "test_dec_similarity.json",
                       on_signal=calls.append)
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
        cfg = compose("config", overrides=[f"path.root={experiment}", f"asr_overrides_file={sizes}",
                                           "device=cpu"])
    assert not cfg.asr_overrides  # the default
    from_file = infer.asr_from_config(cfg, infer.resolve_track(cfg))
    wav = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    np.testing.assert_array_equal(from_file.encode(wav), asr.encode(wav))
