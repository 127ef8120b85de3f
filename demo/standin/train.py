"""Pre-train the stand-in with the recipe's own ``train_asr.py`` (all epochs in stage 1).

The model, loss, optimiser and schedule are the recipe's (``transformer_cpc1.yaml`` with
``demo/asr_demo_overrides.yaml`` and ``demo/standin/pretrain.yaml``). What differs from fine-tuning:
training from scratch with a unigram tokenizer trained on the corpus transcripts, an update every batch,
and :class:`demo.standin.augment.StandinAugment` on the waveforms in place of SpecAugment. The test
step evaluates the averaged final model on the model card's conditions (``wer_card_<condition>.txt``).
"""

from __future__ import annotations

from pathlib import Path

from e032.asr import fine_tuning

from .augment import StandinAugment
from .corpus import CARD_CONDITIONS

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO / "demo" / "asr_demo_overrides.yaml"
PRETRAIN = REPO / "demo" / "standin" / "pretrain.yaml"


def train_args(corpus: Path, output_folder: Path, seed: int, extra: list[str]) -> list[str]:
    """``train_asr.py`` arguments of the pre-training run."""
    for name in ("train.csv", "valid.csv"):
        if not (corpus / name).is_file():
            raise FileNotFoundError(f"{corpus / name} not found: run `demo/make_standin.py corpus` first")
    tests = ", ".join(str(corpus / f"card_{name}.csv") for name, *_ in CARD_CONDITIONS)
    return [
        str(REPO / "transformer_cpc1.yaml"),
        f"--overrides_file={ARCHITECTURE}",
        f"--overrides_file={PRETRAIN}",
        f"--data_folder={corpus}",
        f"--output_folder={output_folder}",
        f"--seed={seed}",
        f"--train_csv={corpus / 'train.csv'}",
        f"--valid_csv={corpus / 'valid.csv'}",
        f"--test_csv=[{tests}]",
        *extra,
    ]


def add_augmentation(hparams: dict) -> None:
    """``train_asr.main`` hook: the stand-in's waveform augmentation in place of the recipe's (off)."""
    hparams["wav_augment"] = StandinAugment()


def pretrain(corpus: Path, output_folder: Path, seed: int, extra: list[str]) -> dict:
    """Train (resuming if a checkpoint exists) and test; returns the test statistics per card CSV."""
    return fine_tuning.main(train_args(corpus, output_folder, seed, extra), customize=add_augmentation)
