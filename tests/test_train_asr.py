"""Tests of train_asr.py and e032/asr/{data,tokenizer,training,specaugment}.py.

Runs on the bundled tiny data (``tests/data/train_asr``: 12 short clean TTS utterances, a 100-piece
tokenizer, the tiny SpeechBrain 0.5.9 checkpoint of ``../shared/asr_reference``) with the tiny model of
that checkpoint (d_model 32), one torch thread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

import train_asr
from e032.asr import fine_tuning
from e032.asr.data import check_manifest
from e032.asr.specaugment import MaskAlongAxis
from e032.asr.tokenizer import prepare_tokenizer, read_transcripts, train_unigram
from e032.asr.training import ASRBrain

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "train_asr"
YAML = REPO / "transformer_cpc1.yaml"
SHARED_KEYS = REPO / ".." / "shared" / "asr_reference" / "model_keys_full.json"
N_PARAMS_FULL = 161_593_104  # model_keys_full.json["n_parameters"] (SB 0.5.9 model)
N_BUFFER_ELEMENTS_FULL = 1_921_795  # positional encoding 1 920 000 + BatchNorm running stats 1 795


def tiny_args(out: Path, *extra: str) -> list[str]:
    """Command line of a tiny run (the architecture of the tiny 0.5.9 checkpoint)."""
    return [
        str(YAML),
        f"--data_folder={DATA}",
        f"--output_folder={out}",
        f"--train_csv={DATA / 'train.csv'}",
        f"--valid_csv={DATA / 'valid.csv'}",
        f"--test_csv=[{DATA / 'test.csv'}]",
        f"--tokenizer_file={DATA / 'tokenizer_100.model'}",
        "--output_neurons=100",
        "--d_model=32",
        "--nhead=4",
        "--num_encoder_layers=2",
        "--num_decoder_layers=2",
        "--d_ffn=64",
        "--cnn_channels=[8, 16, 16]",
        "--transformer_input_size=320",
        "--batch_size=4",
        "--gradient_accumulation=1",
        "--n_warmup_steps=4",
        "--valid_search_interval=1",
        "--valid_beam_size=2",
        "--test_beam_size=3",
        "--ckpt_interval_minutes=0",
        "--torch_num_threads=1",
        "--device=cpu",
        "--noprogressbar",
        *extra,
    ]


def epoch_lines(out: Path) -> list[str]:
    return [line for line in (out / "train_log.txt").read_text().splitlines() if line.startswith("epoch:")]


def noam_steps(out: Path) -> int:
    """Noam step count of the newest checkpoint in ``out/save``."""
    ckpts = sorted((out / "save").glob("CKPT+*"), key=lambda p: p.stat().st_mtime)
    return int(torch.load(ckpts[-1] / "noam_scheduler.ckpt")["n_steps"])


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------- full size
def test_full_size_model_has_the_original_parameter_count(tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    with open(YAML, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, {"data_folder": str(tmp_path), "output_folder": str(tmp_path)})
    model = hparams["model"]
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for b in model.buffers())
    expected = N_PARAMS_FULL
    if SHARED_KEYS.is_file():
        expected = json.loads(SHARED_KEYS.read_text())["n_parameters"]
    assert n_params == expected
    assert n_buffers == N_BUFFER_ELEMENTS_FULL
    # the training objects of the yaml are wired to the same modules
    assert hparams["Transformer"] is model[1] and hparams["modules"]["ctc_lin"] is model[3]
    assert hparams["grad_accumulation_factor"] == 4 and hparams["max_grad_norm"] == 5.0


# ---------------------------------------------------------------------------------- training
def test_training_lowers_the_loss_then_validation_and_test_give_wer(tmp_path):
    out = tmp_path / "run"
    results = train_asr.main(tiny_args(out, "--number_of_epochs=4", "--stage_one_epochs=10", "--lr_adam=0.1"))
    lines = epoch_lines(out)
    assert len(lines) == 4
    losses = [float(re.search(r"train loss: ([0-9.e+-]+)", line).group(1)) for line in lines]
    assert losses[-1] < 0.8 * losses[0], losses
    assert all("valid WER" in line for line in lines)  # beam search + tokenizer at validation (fixed crash)
    assert set(results) == {"test"} and 0 <= results["test"]["WER"] and 0 <= results["test"]["ACC"] <= 1
    assert (out / "wer_test.txt").is_file()
    # after the test stage only the averaged model is kept, with ACC 1.1
    ckpts = list((out / "save").glob("CKPT+*"))
    assert len(ckpts) == 1 and "ACC: 1.1" in (ckpts[0] / "CKPT.yaml").read_text()


def test_waveform_augmentation_hook_changes_training_only(tmp_path):
    """``wav_augment`` is null in the recipe; set through ``main(customize=...)`` it changes the training
    batches only (the demo's stand-in uses this)."""

    def first_losses(name: str, customize=None) -> tuple[float, ...]:
        out = tmp_path / name
        train_asr.main(tiny_args(out, "--number_of_epochs=1", "--stage_one_epochs=10"), customize=customize)
        line = epoch_lines(out)[0]
        return tuple(float(re.search(rf"{k} loss: ([0-9.e+-]+)", line).group(1)) for k in ("train", "valid"))

    plain = first_losses("plain")
    assert first_losses("none", lambda hp: hp.update(wav_augment=None)) == plain  # the recipe's null
    calls = []

    def quieter(wavs, lens):
        calls.append(len(wavs))
        return 0.5 * wavs + 0.01

    assert first_losses("on", lambda hp: hp.update(wav_augment=quieter))[0] != plain[0]
    with open(DATA / "train.csv", encoding="utf-8") as f:
        n_train = sum(1 for _ in f) - 1
    assert sum(calls) == n_train  # every training utterance once; validation and test never


def test_stage_two_switches_to_sgd_and_noam_overrides_its_lr(tmp_path):
    out = tmp_path / "quirk"
    train_asr.main(tiny_args(out, "--number_of_epochs=2", "--stage_one_epochs=1"))
    lines = epoch_lines(out)
    assert "optimizer: Adam" in lines[0] and "optimizer: SGD" in lines[1]
    steps = noam_steps(out)
    lr_sgd_epoch2 = float(re.search(r"lr: ([0-9.e+-]+)", lines[1]).group(1))
    # the original's quirk: Noam keeps setting the rate in stage 2 (lr = d_model^-0.5 * n^-0.5 here)
    assert lr_sgd_epoch2 == pytest.approx(32**-0.5 * min(steps**-0.5, steps * 4**-1.5), rel=1e-3)

    out2 = tmp_path / "fixed"
    train_asr.main(
        tiny_args(out2, "--number_of_epochs=2", "--stage_one_epochs=1", "--noam_overrides_sgd_lr=False")
    )
    lr_fixed = float(re.search(r"lr: ([0-9.e+-]+)", epoch_lines(out2)[1]).group(1))
    assert lr_fixed == pytest.approx(2.5e-5)


class Crash(RuntimeError):
    pass


def test_killed_run_resumes_from_the_last_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "resume"
    args = tiny_args(out, "--number_of_epochs=2", "--stage_one_epochs=1", "--ckpt_interval_steps=1")
    original = ASRBrain.on_fit_batch_end

    def crash_in_epoch_two(self, batch, outputs, loss, should_step):
        original(self, batch, outputs, loss, should_step)
        if self.hparams.epoch_counter.current == 2 and self.step == 2:  # after the step-1 checkpoint
            raise Crash("simulated kill")

    monkeypatch.setattr(ASRBrain, "on_fit_batch_end", crash_in_epoch_two)
    with pytest.raises(Crash):
        train_asr.main(args)
    assert len(epoch_lines(out)) == 1
    sgd_ckpt = max((out / "save").glob("CKPT+*"), key=lambda p: p.stat().st_mtime)
    saved_momentum = torch.load(sgd_ckpt / "optimizer.ckpt")["state"]
    assert saved_momentum, "stage-2 intra-epoch checkpoint should hold SGD momentum"

    monkeypatch.setattr(ASRBrain, "on_fit_batch_end", original)
    restored = {}
    original_init = ASRBrain.init_optimizers

    def record(self):
        original_init(self)
        restored["optimizer"] = self.optimizer

    def after_recovery(self):
        ASRBrain_on_fit_start(self)
        state = self.optimizer.state_dict()["state"]
        restored["state"] = {k: {n: t.clone() for n, t in v.items()} for k, v in state.items()}

    ASRBrain_on_fit_start = ASRBrain.on_fit_start
    monkeypatch.setattr(ASRBrain, "init_optimizers", record)
    monkeypatch.setattr(ASRBrain, "on_fit_start", after_recovery)
    train_asr.main(args)
    lines = epoch_lines(out)
    assert [line.split(",")[0] for line in lines] == ["epoch: 1", "epoch: 2"]  # epoch 1 not repeated
    assert isinstance(restored["optimizer"], torch.optim.SGD)
    # SGD momentum restored (the original re-created the optimiser and lost it)
    for key, value in saved_momentum.items():
        torch.testing.assert_close(restored["state"][key]["momentum_buffer"], value["momentum_buffer"])
    # 8 utterances / batch 4 = 2 updates per epoch, none lost or repeated across the kill
    assert noam_steps(out) == 4


def test_checkpoint_interrupted_while_saving_is_ignored_on_resume(tmp_path, monkeypatch):
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS
    from speechbrain.utils.epoch_loop import EpochCounter

    out = tmp_path / "atomic"
    args = tiny_args(out, "--number_of_epochs=2", "--stage_one_epochs=10")
    save_counter = DEFAULT_SAVE_HOOKS[EpochCounter]

    def killed_while_saving_epoch_two(counter, path):
        if counter.current == 2:
            raise Crash("simulated kill in the middle of a checkpoint save")
        save_counter(counter, path)

    monkeypatch.setitem(DEFAULT_SAVE_HOOKS, EpochCounter, killed_while_saving_epoch_two)
    with pytest.raises(Crash):
        train_asr.main(args)
    partial = [p for p in (out / "save").glob("CKPT+*") if not (p / "CKPT.yaml").exists()]
    assert len(partial) == 1 and (partial[0] / "model.ckpt").is_file()  # half-written, not published
    monkeypatch.setitem(DEFAULT_SAVE_HOOKS, EpochCounter, save_counter)
    train_asr.main(args)  # resumes from the epoch-1 checkpoint and redoes epoch 2
    assert [line.split(",")[0] for line in epoch_lines(out)] == ["epoch: 1", "epoch: 2", "epoch: 2"]
    assert noam_steps(out) == 4


def test_fine_tunes_from_the_tiny_speechbrain_05_checkpoint(tmp_path):
    out = tmp_path / "ft"
    pretrained = tmp_path / "pretrained"
    shutil.copytree(DATA / "tiny_ckpt_05x", pretrained)
    results = train_asr.main(
        tiny_args(
            out,
            f"--pretrained_save_folder={pretrained / 'save'}",
            "--number_of_epochs=121",
            "--stage_one_epochs=90",
        )
    )
    lines = epoch_lines(out)
    assert len(lines) == 1 and lines[0].startswith("epoch: 121") and "optimizer: SGD" in lines[0]
    assert noam_steps(out) == 1500 + 2  # the LibriSpeech-style step count goes on
    assert results["test"]["WER"] >= 0
    # a second run of the same command finds the experiment finished and changes nothing
    before = {
        p: p.read_bytes()
        for p in out.rglob("*")
        if p.is_file()
        and p.suffix in (".ckpt", ".txt", ".yaml")
        and p.name not in ("train_log.txt", "log.txt", "hyperparams.yaml")
    }
    assert (
        train_asr.main(
            tiny_args(
                out,
                f"--pretrained_save_folder={pretrained / 'save'}",
                "--number_of_epochs=121",
                "--stage_one_epochs=90",
            )
        )
        == {}
    )
    after = {p: p.read_bytes() for p in before if p.exists()}
    assert after == before and len(epoch_lines(out)) == 1


def test_ddp_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [
        *torchrun,
        str(REPO / "train_asr.py"),
        *tiny_args(out, "--number_of_epochs=1", "--stage_one_epochs=10"),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(epoch_lines(out)) == 1
    assert noam_steps(out) == 1  # 8 utterances split over 2 processes of batch 4: one update each, in step


SLOW_PUBLISH = """
import os, sys, time
sys.path.insert(0, {repo!r})
import e032.asr.training as training
import train_asr

def slow_replace(src, dst):  # rank 0 publishes each checkpoint late, as on a slow file system
    time.sleep(1.5)
    os.replace(src, dst)

training.os = type("SlowOs", (), {{"replace": staticmethod(slow_replace)}})
train_asr.main(sys.argv[1:])
"""


def test_ddp_does_not_deadlock_when_a_checkpoint_is_published_late(tmp_path):
    """Regression: rank 1 listed checkpoints before rank 0 renamed CKPT.yaml into place, so the two
    disagreed on what to delete and waited on each other's broadcasts for ever (seen in pre-training)."""
    script = tmp_path / "slow_publish.py"
    script.write_text(SLOW_PUBLISH.format(repo=str(REPO)))
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [
        *torchrun,
        str(script),
        *tiny_args(out, "--number_of_epochs=3", "--stage_one_epochs=10", "--valid_search_interval=100"),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(epoch_lines(out)) == 3
    assert len(list((out / "save").glob("CKPT+*"))) == 1  # averaged model only, older ones deleted


# ---------------------------------------------------------------------------------- device
def test_device_defaults_to_cpu_without_cuda_and_can_be_overridden(monkeypatch):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    _, run_opts, _ = train_asr.parse_command_line([str(YAML)])
    run_opts = fine_tuning.configure_runtime(run_opts, {"torch_num_threads": None})
    assert run_opts.device == "cpu" and run_opts.distributed_backend == "gloo"
    assert "device" in run_opts.overridden_args
    _, run_opts, _ = train_asr.parse_command_line([str(YAML), "--device=cuda:1"])
    assert fine_tuning.configure_runtime(run_opts, {}).device == "cuda:1"


def test_overrides_file_applies_before_command_line_overrides(tmp_path):
    overrides = tmp_path / "sizes.yaml"
    overrides.write_text("d_model: 64\nnhead: 2\nlr_adam: 0.5\n")
    _, run_opts, merged = train_asr.parse_command_line(
        [str(YAML), f"--overrides_file={overrides}", "--nhead=4", "--device=cpu"]
    )
    assert merged == {"d_model": 64, "nhead": 4, "lr_adam": 0.5}
    assert run_opts.device == "cpu"
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        train_asr.parse_command_line([str(YAML), f"--overrides_file={tmp_path / 'nowhere.yaml'}"])


# ---------------------------------------------------------------------------------- clear errors
def test_missing_pretrained_checkpoint_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "no_such_save"
    with pytest.raises(FileNotFoundError, match="no_such_save"):
        train_asr.main(tiny_args(tmp_path / "out", f"--pretrained_save_folder={missing}"))


def test_pretrained_model_without_its_tokenizer_is_a_clear_error(tmp_path):
    """The original would have trained a new 5000-piece tokenizer that does not match the model."""
    pretrained = f"--pretrained_save_folder={DATA / 'tiny_ckpt_05x' / 'save'}"
    args = [a for a in tiny_args(tmp_path / "out", pretrained) if not a.startswith("--tokenizer_file=")]
    with pytest.raises(ValueError, match="no --tokenizer_file"):
        train_asr.main(args)
    assert not (tmp_path / "out" / "save" / "tokenizer.model").exists()  # no tokenizer was trained


def test_tokenizer_vocabulary_must_match_output_neurons(tmp_path):
    with pytest.raises(ValueError, match="100 pieces.*output_neurons=120"):
        train_asr.main(tiny_args(tmp_path / "out", "--output_neurons=120"))


def test_empty_csv_and_missing_audio_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("ID,duration,wav,spk_id,wrd\n")
    with pytest.raises(ValueError, match="empty.csv has no rows"):
        train_asr.main(tiny_args(tmp_path / "out", f"--train_csv={empty}"))
    with pytest.raises(ValueError, match="empty.csv has no rows"):
        read_transcripts(empty)
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,duration,wav,spk_id,wrd\nu1,1.0,$data_root/nowhere.wav,s,HELLO\n")
    with pytest.raises(FileNotFoundError, match="nowhere.wav.*u1"):
        check_manifest(bad, tmp_path)


# ---------------------------------------------------------------------------------- tokenizer, SpecAugment
def test_trained_tokenizer_is_deterministic_and_has_the_recipe_special_ids(tmp_path):
    texts = read_transcripts(DATA / "train.csv")
    a = train_unigram(texts, tmp_path / "a.model", 30)
    b = train_unigram(texts, tmp_path / "b.model", 30)
    assert a.read_bytes() == b.read_bytes()
    sp = spm.SentencePieceProcessor()
    path = prepare_tokenizer(sp, None, DATA / "train.csv", 30, tmp_path / "c.model")
    assert path.read_bytes() == a.read_bytes()
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    with pytest.raises(ValueError, match="cannot train a 5000-piece"):
        train_unigram(texts, tmp_path / "d.model", 5000)


@pytest.mark.parametrize("dim,width", [(1, 40), (2, 30)])
def test_masks_follow_speechbrain_05(dim, width):
    torch.manual_seed(0)
    x = torch.randn(64, 120, 80)
    mean = x.mean()
    mask = MaskAlongAxis(0, width, 2, 2, "mean", dim)
    y = mask(x.clone())
    changed = (y != x).any(dim=3 - dim)  # [batch, axis]: masked positions of each utterance
    assert torch.allclose(y[y != x], mean)
    assert changed.sum(1).max() <= 2 * (width - 1)
    # 0.5.x placement: no mask reaches past D - (longest mask) + longest mask - 1, masks are never cut
    # 0.5.x placement: starts in [0, D - longest mask), so no mask reaches the last bin/frame; the 1.x
    # rule (starts anywhere in [0, D)) does reach it with 128 masks
    assert not changed[:, -1].any()
    torch.manual_seed(0)
    y1 = MaskAlongAxis(0, width, 2, 2, "mean", dim, position_rule="sb1")(x.clone())
    assert (y1 != x).any(dim=3 - dim)[:, -1].any()
    with pytest.raises(ValueError, match="position_rule"):
        MaskAlongAxis(position_rule="random")


def test_overrides_are_read_as_yaml_1_2_like_hyperpyyaml(tmp_path):
    """``1e-3`` is a float in YAML 1.2 (SpeechBrain's reading); PyYAML's 1.1 rules made it a string."""
    overrides_file = tmp_path / "o.yaml"
    overrides_file.write_text("lr_sgd: 2e-5\ncnn_channels: [8, 16, 16]\n")
    _, _, overrides = train_asr.parse_command_line(
        [str(YAML), f"--overrides_file={overrides_file}", "--lr_adam=1e-3"]
    )
    assert overrides == {"lr_sgd": 2e-5, "cnn_channels": [8, 16, 16], "lr_adam": 1e-3}
