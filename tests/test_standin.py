"""Tests of the demo's stand-in ASR: the shipped model (demo/standin_asr) and the command that makes it.

The command is run at a tiny size (a few utterances, a 1-layer d_model-32 model, one or two epochs).
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from demo.standin import augment, card, corpus, degrade, texts, voices
from demo.standin.train import add_augmentation
from e032.asr import fine_tuning

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "demo" / "standin_asr"
TINY_MODEL = [
    "--d_model=32",
    "--nhead=4",
    "--num_encoder_layers=1",
    "--num_decoder_layers=1",
    "--d_ffn=64",
    "--output_neurons=60",
    "--test_beam_size=3",
    "--device=cpu",
    "--noprogressbar",
]
needs_wordnet = pytest.mark.skipif(
    not (texts.WORDNET_DIR / "data.noun").is_file(),
    reason="WordNet (Debian wordnet-base) not installed: `make standin` installs it",
)


# ------------------------------------------------------------------------------------ the shipped model
def test_shipped_files_match_the_card():
    assert card.check_shipped(SHIPPED) == []
    digest = card.read_json(SHIPPED / "standin_card.json")["sha256"]
    assert {"save/CKPT+standin/model.ckpt", "tokenizer.model", "samples/samples.csv"} <= set(digest)
    # and the check can fail: a changed byte is reported
    model = SHIPPED / "save" / "CKPT+standin" / "model.ckpt"
    assert digest["save/CKPT+standin/model.ckpt"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_shipped_model_loads_like_librispeech_and_transcribes_heldout_voices(tmp_path):
    """train_asr.py --pretrained_save_folder seeds save/ from it (the LibriSpeech path); with no epoch
    left to train, its test step decodes the two shipped held-out-voice sentences without an error."""
    epochs = card.read_json(SHIPPED / "standin_card.json")["model"]["epochs"]
    samples = SHIPPED / "samples" / "samples.csv"
    with open(samples, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["spk_id"].split("_")[2] in voices.HELDOUT_TIMBRES for r in rows)
    stats = fine_tuning.main(
        [
            str(REPO / "transformer_cpc1.yaml"),
            f"--overrides_file={REPO / 'demo' / 'asr_demo_overrides.yaml'}",
            f"--data_folder={SHIPPED}",
            f"--output_folder={tmp_path}",
            f"--train_csv={samples}",
            f"--valid_csv={samples}",
            f"--test_csv=[{samples}]",
            f"--number_of_epochs={epochs}",
            f"--pretrained_save_folder={SHIPPED / 'save'}",
            f"--tokenizer_file={SHIPPED / 'tokenizer.model'}",
            "--device=cpu",
            "--noprogressbar",
        ]
    )
    assert stats["samples"]["WER"] == 0.0
    wer = card.read_wer_file(tmp_path / "wer_samples.txt")
    assert wer["words"] == sum(len(r["wrd"].split()) for r in rows) and wer["errors"] == 0


# ------------------------------------------------------------------------------------ the pieces
def test_wordnet_examples_are_normalised_and_split_reproducibly():
    line = (
        '00001740 03 n 01 entity 0 | that which exists; "the comedian drew a lot of laughter"; '
        '"it cost $5 in 1990"; "too short"'
    )
    assert texts.examples_from_lines([line, "  1 This software and database"]) == {
        "the comedian drew a lot of laughter"
    }
    sentences = [f"sentence number {i} here" for i in range(50)]
    a, b = (texts.split_sentences(sentences, 5, 5, seed=3) for _ in range(2))
    assert a == b and not set(a["test"]) & set(a["train"]) and len(a["train"]) == 40


def test_heldout_timbres_never_occur_in_training_draws():
    rng = np.random.default_rng(0)
    train = {voices.draw_voice(rng).timbre for _ in range(3000)}
    heldout = {voices.draw_voice(rng, heldout=True).timbre for _ in range(200)}
    assert not train & set(voices.HELDOUT_TIMBRES) and heldout == set(voices.HELDOUT_TIMBRES)
    assert {"flite", "espeak-ng"} == {voices.draw_voice(rng).engine for _ in range(200)}


def test_degradation_is_seeded_finite_and_in_msbg_calibration():
    from msbg import Ear

    t = np.arange(int(1.5 * degrade.SAMPLE_RATE)) / degrade.SAMPLE_RATE
    speech = np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 4 * t))  # an amplitude-modulated tone
    pool = [np.random.default_rng(k).standard_normal(degrade.SAMPLE_RATE) for k in range(3)]
    ear = Ear(src_pos="ff", equiv_0db_spl=100.0, ahr=20.0)
    out1, s1 = degrade.degrade(speech, pool, np.random.default_rng(7), ear)
    out2, s2 = degrade.degrade(speech, pool, np.random.default_rng(7), ear)
    out3, s3 = degrade.degrade(speech, pool, np.random.default_rng(8), ear)
    assert s1 == s2 and np.array_equal(out1, out2) and s3 != s1
    assert np.all(np.isfinite(out1)) and np.all(np.isfinite(out3))
    # digital silence around a low-passed signal used to give NaN in MSBG; the noise floor prevents it
    silent = np.concatenate(
        [np.zeros(4410), degrade.hearing_aid_like(speech * 0.01, "lowpass", np.random.default_rng(0))]
    )
    assert np.all(np.isfinite(degrade.simulate_ear(silent, degrade.NAMED_AUDIOGRAMS["mild"], ear)))
    # the output limit
    loud = np.ones(1000)
    assert degrade.rms(degrade.limit_output(loud)) == pytest.approx(10 ** ((110 - 120) / 20))


def test_on_the_fly_augmentation_keeps_padding_and_follows_the_seed():
    wavs = torch.randn(4, 8000) * 0.1
    lens = torch.tensor([1.0, 0.5, 0.75, 1.0])
    aug = augment.StandinAugment()
    torch.manual_seed(0)
    a = aug(wavs, lens)
    torch.manual_seed(0)
    b = aug(wavs, lens)
    assert torch.equal(a, b) and a[1, 4000:].abs().max() == 0 and a[2, 6000:].abs().max() == 0
    assert not torch.allclose(a, wavs)
    quiet = augment.StandinAugment(noise_prob=0, tilt_prob=0, clip_prob=0, gain_db=(-6.0, -6.0))
    assert torch.allclose(quiet(wavs, torch.ones(4)), wavs * 10 ** (-6 / 20), atol=1e-6)
    # noise alone, at a fixed SNR: the SNR over the valid samples is the one asked for
    for snr_db in (-5.0, 10.0):
        noisy = augment.StandinAugment(
            noise_prob=1, snr_db=(snr_db, snr_db), tilt_prob=0, clip_prob=0, gain_db=(0.0, 0.0)
        )
        out = noisy(wavs, lens)
        mask = augment.valid_mask(lens, wavs.shape[1])
        measured = 10 * torch.log10(
            augment.mean_power(wavs * mask, mask) / augment.mean_power(out - wavs * mask, mask)
        )
        torch.testing.assert_close(measured, torch.full_like(measured, snr_db), atol=1e-3, rtol=0)
    hparams = {"wav_augment": None}
    add_augmentation(hparams)
    assert isinstance(hparams["wav_augment"], augment.StandinAugment)


# ------------------------------------------------------------------------------------ the command
def _make_standin(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "demo" / "make_standin.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@needs_wordnet
@pytest.mark.slow
def test_tiny_standin_command_resumes_and_ships_a_loadable_model(tmp_path):
    size = ["--n-train", "10", "--n-valid", "2", "--n-card", "1", "--num-workers", "1"]
    build = tmp_path / "build"
    # corpus: killed part-way, re-run -> the same files as an uninterrupted build elsewhere
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "demo" / "make_standin.py"), "corpus", "--out", str(build), *size],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wav_dir = build / "corpus" / "wav" / "train"
    for _ in range(600):
        if wav_dir.is_dir() and len(list(wav_dir.glob("*.wav"))) >= 3 or proc.poll() is not None:
            break
        subprocess.run(["sleep", "0.1"])
    proc.kill()
    proc.wait()
    assert _make_standin("corpus", "--out", str(build), *size).returncode == 0
    assert _make_standin("corpus", "--out", str(tmp_path / "fresh"), *size).returncode == 0
    assert _tree(build / "corpus") == _tree(tmp_path / "fresh" / "corpus")

    # train one epoch, then ask for two: the re-run resumes at epoch 2
    one = _make_standin(
        "train", "--out", str(build), *TINY_MODEL, "--number_of_epochs=1", "--stage_one_epochs=1"
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = _make_standin(
        "train", "--out", str(build), *TINY_MODEL, "--number_of_epochs=2", "--stage_one_epochs=2"
    )
    assert two.returncode == 0, two.stderr[-3000:]
    log = [
        line.split(",")[0]
        for line in (build / "train" / "train_log.txt").read_text().splitlines()
        if line.startswith("epoch:")
    ]
    assert log == ["epoch: 1", "epoch: 2"]

    shipped = _make_standin("card", "--out", str(build), "--ship", str(tmp_path / "ship"))
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    assert card.check_shipped(tmp_path / "ship") == []
    model_card = card.read_json(tmp_path / "ship" / "standin_card.json")
    assert model_card["model"]["epochs"] == 2 and set(model_card["wer_percent"]) == {
        c[0] for c in corpus.CARD_CONDITIONS
    }
    from hyperpyyaml import load_hyperpyyaml

    from e032.asr.checkpoint import load_save_folder

    tiny = {
        k.lstrip("-").split("=")[0]: fine_tuning.load_yaml(k.split("=", 1)[1])
        for k in TINY_MODEL
        if k.count("=") == 1 and "device" not in k
    }
    overrides = {
        **fine_tuning.read_overrides_file(str(REPO / "demo" / "asr_demo_overrides.yaml")),
        **tiny,
        "data_folder": str(tmp_path),
        "output_folder": str(tmp_path),
    }
    with open(REPO / "transformer_cpc1.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    assert load_save_folder(hparams["model"], hparams["normalize"], tmp_path / "ship" / "save").epoch == 2
