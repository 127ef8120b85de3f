"""SpeechBrain datasets of the E032 ASR: the CSV manifests, the audio pipeline and the token pipeline.

Each CSV has the columns ``ID, duration, wav, spk_id, wrd`` (written by ``prepare_data.py`` for
MSBG-processed CPC1 speech, or by the mini-CPC1 generator for the clean pre-training corpus). ``wav`` may
use the ``$data_root`` placeholder, which is replaced by ``data_folder``. As in the original recipe the
training set keeps CSV order (the dataloader shuffles), the validation and test sets are sorted by
duration, and every item provides ``sig`` (16 kHz waveform), ``wrd`` (the upper-case transcript),
``tokens_bos`` ([bos] + pieces), ``tokens_eos`` (pieces + [eos]) and ``tokens`` (pieces, CTC target).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm
import speechbrain as sb
import torch

from e032.manifests import CSV_HEADER as CSV_COLUMNS  # the columns prepare_data.py writes
from e032.manifests import read_manifest

logger = logging.getLogger(__name__)

OUTPUT_KEYS = ["id", "sig", "wrd", "tokens_bos", "tokens_eos", "tokens"]


def check_manifest(csv_path: str | os.PathLike, data_folder: str | os.PathLike) -> int:
    """Validate one CSV before SpeechBrain reads it; return its number of rows.

    Raises
    ------
    FileNotFoundError
        If the CSV, or an audio file it lists, does not exist.
    ValueError
        If the CSV lacks a required column or has no rows.
    """
    rows = read_manifest(csv_path, data_folder, required=CSV_COLUMNS, what="CSV manifest")
    for row in rows:
        if not row.wav.is_file():
            raise FileNotFoundError(f"audio file {row.wav} (utterance {row.id} of {csv_path}) not found")
    return len(rows)


def load_manifest(
    csv_path: str | os.PathLike, data_folder: str | os.PathLike, sort_by_duration: bool
) -> sb.dataio.dataset.DynamicItemDataset:
    """A checked :class:`DynamicItemDataset` from one CSV (sorted by duration if asked)."""
    n_rows = check_manifest(csv_path, data_folder)
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
        csv_path=str(csv_path), replacements={"data_root": str(data_folder)}
    )
    logger.info("%s: %d utterances", csv_path, n_rows)
    return dataset.filtered_sorted(sort_key="duration") if sort_by_duration else dataset


def add_pipelines(
    datasets: Sequence[sb.dataio.dataset.DynamicItemDataset],
    tokenizer: spm.SentencePieceProcessor,
    bos_index: int,
    eos_index: int,
) -> None:
    """Attach the audio and token pipelines and set the output keys (:data:`OUTPUT_KEYS`)."""

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav: str) -> torch.Tensor:
        return sb.dataio.dataio.read_audio(wav)

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides("wrd", "tokens_bos", "tokens_eos", "tokens")
    def text_pipeline(wrd: str):
        yield wrd
        pieces = tokenizer.encode_as_ids(wrd)
        yield torch.LongTensor([bos_index] + pieces)
        yield torch.LongTensor(pieces + [eos_index])
        yield torch.LongTensor(pieces)

    sb.dataio.dataset.add_dynamic_item(list(datasets), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets), text_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets), OUTPUT_KEYS)


def build_datasets(hparams: dict[str, Any], tokenizer: spm.SentencePieceProcessor):
    """Train, valid and test datasets of the yaml's ``train_csv``, ``valid_csv`` and ``test_csv``.

    Returns
    -------
    train : DynamicItemDataset
    valid : DynamicItemDataset
    tests : dict of str to DynamicItemDataset
        Keyed by the CSV's stem (e.g. ``left_dev_msbg``).
    """
    data_folder = hparams["data_folder"]
    train = load_manifest(hparams["train_csv"], data_folder, sort_by_duration=False)
    valid = load_manifest(hparams["valid_csv"], data_folder, sort_by_duration=True)
    tests = {Path(p).stem: load_manifest(p, data_folder, sort_by_duration=True) for p in hparams["test_csv"]}
    add_pipelines([train, valid, *tests.values()], tokenizer, hparams["bos_index"], hparams["eos_index"])
    return train, valid, tests
