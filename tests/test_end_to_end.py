"""End to end: the four scripts, run as a user runs them, on the tiny mini-CPC1 with a tiny ASR.

prepare_data.py -> train_asr.py (fine-tunes the tiny SpeechBrain 0.5.9 checkpoint for one epoch, as the
real recipe fine-tunes the LibriSpeech one) -> infer.py -> evaluate.py, in a temporary experiment folder.
Checks that every artifact exists and is well formed, and that running all four again changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.tiny_asr import TINY_ASR_SIZES

REPO = Path(__file__).resolve().parents[1]
ASR_DATA = REPO / "tests" / "data" / "train_asr"
TINY_SIZES = TINY_ASR_SIZES  # the architecture of the tiny 0.5.9 checkpoint (its tiny_config.json)
CSV_NAMES = [
    f"{ear}_{part}_{kind}.csv"
    for ear in ("left", "right", "binaural")
    for part in ("train", "dev", "test")
    for kind in ("msbg", "ref")
]


def run(*args: str) -> str:
    """Run one script of the recipe in a fresh process (1 thread), fail with its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def train_tiny(data_folder: Path, output_folder: Path, pretrained: Path, overrides_file: Path) -> None:
    """train_asr.py: one epoch of the tiny model from the tiny 0.5.9 checkpoint, on CPU."""
    run(
        "train_asr.py",
        str(REPO / "transformer_cpc1.yaml"),
        f"--overrides_file={overrides_file}",
        f"--data_folder={data_folder}",
        f"--output_folder={output_folder}",
        f"--pretrained_save_folder={pretrained}",
        f"--tokenizer_file={ASR_DATA / 'tokenizer_100.model'}",
        "--number_of_epochs=121",
        "--batch_size=4",
        "--gradient_accumulation=1",
        "--valid_beam_size=2",
        "--test_beam_size=2",
        "--valid_search_interval=1000",
        "--ckpt_interval_minutes=0",
        "--device=cpu",
        "--noprogressbar",
    )


def infer_tiny(hydra_args: list[str], overrides_file: Path) -> None:
    """infer.py with the tiny model's sizes, beam 8, on CPU."""
    run(
        "infer.py",
        *hydra_args,
        f"asr_overrides_file={overrides_file}",
        "asr_overrides={test_beam_size: 8}",
        "device=cpu",
    )


def run_recipe(root: Path, exp: Path, pretrained: Path, overrides_file: Path) -> str:
    hydra_args = [f"path.root={root}", f"path.exp_folder={exp}", "progress=false"]
    run("prepare_data.py", *hydra_args, "num_workers=2")
    train_tiny(exp / "cpc1_asr_data", exp / "asr", pretrained, overrides_file)
    infer_tiny(hydra_args, overrides_file)
    # a 1-epoch tiny model gives similarities the logistic fit cannot resolve on 6 dev signals
    return run("evaluate.py", *hydra_args, "allow_degenerate_fit=true")


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every result file under ``folder`` (logs and Hydra run folders excluded)."""
    skip_dirs, skip_suffixes = {"hydra"}, {".log"}
    digests = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_dir() or skip_dirs & set(rel.parts) or path.suffix in skip_suffixes:
            continue
        if rel.parts[0] == "asr" and path.name in {"train_log.txt", "log.txt", "hyperparams.yaml"}:
            continue  # appended to / rewritten with the run's time by SpeechBrain on every run
        digests[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


@pytest.mark.slow
def test_four_scripts_on_tiny_mini_cpc1(tiny_cpc1_root, tiny_cpc1_run):
    exp, overrides_file, table = (tiny_cpc1_run[k] for k in ("exp", "overrides_file", "table"))

    # stage 1: split lists, MSBG outputs, 16 kHz files and the 18 CSVs
    train_records = json.loads(
        (tiny_cpc1_root / "clarity_CPC1_data_train/metadata/CPC1.train.json").read_text()
    )
    test_records = json.loads((tiny_cpc1_root / "clarity_CPC1_data_test/metadata/CPC1.test.json").read_text())
    dev_scenes = set(json.loads((exp / "data_split/scene_dev_list.json").read_text()))
    train_scenes = set(json.loads((exp / "data_split/scene_train_list.json").read_text()))
    assert dev_scenes and train_scenes and not dev_scenes & train_scenes
    assert dev_scenes | train_scenes == {r["scene"] for r in train_records}
    for r in train_records + test_records:
        split = "train" if r in train_records else "test"
        hl = sf.info(exp / "msbg" / split / f"{r['signal']}_HL-output.wav")
        assert (hl.samplerate, hl.channels, hl.subtype) == (44100, 2, "FLOAT")
    for name in CSV_NAMES:
        with open(exp / "cpc1_asr_data" / name, newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows and list(rows[0]) == ["ID", "duration", "wav", "spk_id", "wrd"], name
        assert rows[0]["wav"].startswith("$data_root/"), name  # the folder can move
        wav = sf.info(exp / "cpc1_asr_data" / rows[0]["wav"].removeprefix("$data_root/"))
        assert (wav.samplerate, wav.channels, wav.subtype) == (16000, 1, "PCM_16")
        assert math.isclose(float(rows[0]["duration"]), wav.frames / 16000, abs_tol=1e-3)
    # stage 2: the averaged final model
    assert len(list((exp / "asr" / "save").glob("CKPT+*/model.ckpt"))) == 1
    # stage 3: similarities of every dev and test signal, in [-1, 1]
    dev_signals = {r["signal"] for r in train_records if r["scene"] in dev_scenes}
    for part, signals in (("dev", dev_signals), ("test", {r["signal"] for r in test_records})):
        for rep in ("enc", "dec"):
            sims = json.loads((exp / f"{part}_{rep}_similarity.json").read_text())
            assert set(sims) == signals and all(-1 <= v <= 1 for v in sims.values())
    # stage 4: results, plot, submission CSVs, printed table
    results = json.loads((exp / "results.json").read_text())
    for rep in ("enc_results", "dec_results"):
        assert set(results[rep]) == {"RMSE", "Std", "NCC", "KT"}
        assert 0 <= results[rep]["RMSE"] <= 100
    assert (exp / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(exp / "submission" / "test_dec_predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["signal_ID", "intelligibility_score"] and len(rows) == 1 + len(test_records)
    assert "RMSE" in table and "dec" in table

    # the demo's quality report (demo/quality.py) against a computation from the raw files
    printed = run("demo/quality.py", f"--root={tiny_cpc1_root}", f"--exp={exp}")
    assert "dev-mean predictor" in printed and "ceiling NCC" in printed
    report = json.loads((exp / "demo_quality.json").read_text())
    dev_y = [r["correctness"] for r in train_records if r["scene"] in dev_scenes]
    labels = {
        r["signal"]: r["correctness"]
        for r in json.loads((tiny_cpc1_root / "test_listener_responses/CPC1.test.json").read_text())
    }
    latent_p = {s["signal"]: s["p"] for s in json.loads((tiny_cpc1_root / "latent/signals.json").read_text())}
    test_ids = sorted(labels)
    assert report["n_test"] == len(test_records) and report["dev_mean"] == pytest.approx(np.mean(dev_y))
    assert report["dev_mean_rmse"] == pytest.approx(
        np.sqrt(np.mean([(labels[s] - np.mean(dev_y)) ** 2 for s in test_ids]))
    )
    assert report["ceiling_ncc"] == pytest.approx(
        np.corrcoef([latent_p[s] for s in test_ids], [labels[s] for s in test_ids])[0, 1]
    )
    assert report["target_ncc"] == pytest.approx(0.8 * report["ceiling_ncc"])
    for rep in ("enc", "dec"):
        assert report[rep]["RMSE"] == results[f"{rep}_results"]["RMSE"]
        assert report[rep]["beats_dev_mean"] == (report[rep]["RMSE"] < report["dev_mean_rmse"])

    # running everything again changes nothing
    before = tree_digest(exp)
    run_recipe(tiny_cpc1_root, exp, tiny_cpc1_run["pretrained"], overrides_file)
    assert tree_digest(exp) == before
