"""The fine-tuning run of ``train_asr.py``: command line, yaml, tokenizer, data, start, train, test.

``train_asr.py`` is a thin script over :func:`main`; the demo's stand-in pre-training calls
:func:`main` too (with ``customize``). The steps follow the original recipe's ``train_asr.py``
(``docs/original_recipe.md`` §3); the arithmetic lives in :mod:`e032.asr.training`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml import YAML

from e032.asr.checkpoint import load_starting_point
from e032.asr.data import build_datasets
from e032.asr.tokenizer import prepare_tokenizer
from e032.asr.training import ASRBrain

logger = logging.getLogger(__name__)


def parse_command_line(argv: list[str]):
    """``sb.parse_arguments`` plus ``--overrides_file``; returns (yaml file, run options, overrides dict)."""
    file_overrides: dict = {}
    rest = []
    for arg in argv:
        if arg.startswith("--overrides_file="):
            file_overrides.update(read_overrides_file(arg.split("=", 1)[1]))
        else:
            rest.append(arg)
    hparams_file, run_opts, cli_overrides = sb.parse_arguments(rest)
    # one `key: value` line per --key=value; parsed line by line so that a repeated key takes its last value
    cli = {k: v for line in cli_overrides.splitlines() if line.strip() for k, v in load_yaml(line).items()}
    overrides = {**file_overrides, **cli}
    return hparams_file, run_opts, overrides


def load_yaml(source):
    """Parse YAML 1.2 as HyperPyYAML does (PyYAML's 1.1 rules would read ``1e-3`` as a string)."""
    return YAML(typ="safe", pure=True).load(source)


def read_overrides_file(path: str) -> dict:
    """A flat yaml mapping of hparams overrides."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"overrides file not found: {path}")
    with open(path, encoding="utf-8") as f:
        overrides = load_yaml(f) or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"{path} must be a yaml mapping of key: value overrides")
    return overrides


def configure_runtime(run_opts, hparams: dict):
    """Device (CUDA if available, else CPU; ``--device`` wins), DDP backend, torch threads, and
    no progress bars when stderr is not a terminal (a log file would get hundreds of updates;
    run in a terminal to see them).

    Returns the updated run options (SpeechBrain's ``RunOptions`` is immutable).
    """
    changes: dict = {}
    if "noprogressbar" not in run_opts.overridden_args and not sys.stderr.isatty():
        changes["noprogressbar"] = True
    if run_opts.device is None:
        changes["device"] = sb.utils.distributed.infer_device()
    device = changes.get("device", run_opts.device)
    if not device.startswith("cuda") and "distributed_backend" not in run_opts.overridden_args:
        changes["distributed_backend"] = "gloo"  # NCCL needs GPUs
    run_opts = dataclasses.replace(
        run_opts, **changes, overridden_args=run_opts.overridden_args | set(changes)
    )
    n_threads = hparams.get("torch_num_threads")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device == "cpu":
        n_threads = 1  # one core per process
    if n_threads:
        torch.set_num_threads(int(n_threads))
    logger.info("device %s, %d torch thread(s)", device, torch.get_num_threads())
    return run_opts


def check_tokenizer_source(hparams: dict) -> None:
    """A pretrained model needs its own tokenizer: refuse to train a new one for it.

    Raises
    ------
    ValueError
        If ``pretrained_save_folder`` or ``pretrained_hf_folder`` is set and ``tokenizer_file`` is not
        (a tokenizer trained on the CPC1 transcripts would not match the model's output layer).
    """
    pretrained = hparams["pretrained_save_folder"] or hparams["pretrained_hf_folder"]
    if pretrained is not None and hparams["tokenizer_file"] is None:
        raise ValueError(
            f"a pretrained model is given ({pretrained}) but no --tokenizer_file: pass the tokenizer the "
            "model was trained with (e.g. the LibriSpeech tokenizer.ckpt); training a new one would not "
            "match the model's output tokens"
        )


def setup_tokenizer(hparams: dict) -> None:
    """Load or train (on the main process, once) the tokenizer into ``hparams['tokenizer']``."""
    special_ids = (hparams["unk_index"], hparams["bos_index"], hparams["eos_index"])
    args = (
        hparams["tokenizer"],
        hparams["tokenizer_file"],
        hparams["train_csv"],
        hparams["output_neurons"],
        hparams["trained_tokenizer_file"],
        special_ids,
    )
    sb.utils.distributed.run_on_main(
        prepare_tokenizer, args=args, post_func=prepare_tokenizer, post_args=args
    )


def start_from_pretrained(brain: ASRBrain, hparams: dict) -> None:
    """On a fresh run, seed ``save/`` with the pretrained model (the original copied it there by hand).

    The seeded checkpoint carries the pretrained epoch counter and Noam step count
    (:func:`load_starting_point`) and, with ``average_pretrained_checkpoint: true``, its ``CKPT.yaml``
    ACC, which decides whether it is kept and averaged into the final model.
    """
    save, hf = hparams["pretrained_save_folder"], hparams["pretrained_hf_folder"]
    # decided on the main process: another process could otherwise see the seed being written
    resuming = sb.utils.distributed.ddp_broadcast(brain.checkpointer.find_checkpoint() is not None)
    if resuming:
        logger.info("resuming from %s", brain.checkpointer.checkpoints_dir)
        return
    if save is None and hf is None:
        logger.info("no pretrained model given: training from scratch")
        return
    loaded = load_starting_point(hparams, save_folder=save, hf_folder=hf, device=brain.device)
    meta = {k: v for k, v in loaded.meta.items() if k in ("ACC", "epoch")}
    if not hparams["average_pretrained_checkpoint"]:
        meta.pop("ACC", None)
    if hparams["epoch_counter"].current >= hparams["number_of_epochs"]:
        logger.warning(
            "the pretrained model is at epoch %d >= number_of_epochs=%d: nothing to train",
            hparams["epoch_counter"].current,
            hparams["number_of_epochs"],
        )
    brain.checkpointer.save_checkpoint(meta={"pretrained": str(loaded.source), **meta}, end_of_epoch=True)


def is_finished(brain: ASRBrain, hparams: dict) -> bool:
    """True when the newest checkpoint is the final averaged model of all epochs and every test CSV has
    its ``wer_<name>.txt``: re-running a finished experiment then changes nothing."""
    ckpt = brain.checkpointer.find_checkpoint()
    if ckpt is None or "averaged_checkpoints" not in ckpt.meta:
        return False
    if int(Path(ckpt.paramfiles["counter"]).read_text().strip()) < hparams["number_of_epochs"]:
        return False  # more epochs were asked for since
    return all(
        (Path(hparams["output_folder"]) / f"wer_{Path(p).stem}.txt").is_file() for p in hparams["test_csv"]
    )


def train(brain: ASRBrain, train_data, valid_data, hparams: dict) -> None:
    """Fit until ``number_of_epochs`` (resuming from the latest checkpoint)."""
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        valid_data,
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )


def test(brain: ASRBrain, test_sets: dict, hparams: dict) -> dict:
    """WER of the averaged model on every test CSV (``wer_<name>.txt``); returns {name: stats}."""
    results = {}
    for name, dataset in test_sets.items():
        brain.hparams.wer_file = str(Path(hparams["output_folder"]) / f"wer_{name}.txt")
        brain.evaluate(dataset, max_key="ACC", test_loader_kwargs=hparams["test_dataloader_opts"])
        results[name] = brain.last_stats
        logger.info("%s: WER %.2f %%, ACC %.4f", name, brain.last_stats["WER"], brain.last_stats["ACC"])
    return results


def main(argv: list[str] | None = None, customize: Callable[[dict], None] | None = None) -> dict:
    """Run tokenizer, data, pretrained start, training and test; return the test statistics.

    ``customize`` (not used by the recipe) may change the loaded hparams in place before anything is
    built from them; the demo's stand-in pre-training (``demo/make_standin.py``) sets its waveform
    augmentation this way.
    """
    hparams_file, run_opts, overrides = parse_command_line(sys.argv[1:] if argv is None else argv)
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    if customize is not None:
        customize(hparams)
    check_tokenizer_source(hparams)
    run_opts = configure_runtime(run_opts, hparams)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    setup_tokenizer(hparams)
    train_data, valid_data, test_sets = build_datasets(hparams, hparams["tokenizer"])
    brain = ASRBrain(
        modules=hparams["modules"],
        opt_class=hparams["Adam"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.tokenizer = hparams["tokenizer"]
    if is_finished(brain, hparams):
        logger.info(
            "%s is finished (final averaged model and WER files present): nothing to do",
            hparams["output_folder"],
        )
        return {}
    start_from_pretrained(brain, hparams)
    train(brain, train_data, valid_data, hparams)
    return test(brain, test_sets, hparams)
