#!/usr/bin/env python3
"""Demo stand-in for the LibriSpeech model: pre-train the small E032 transformer on the clean TTS corpus.

The real recipe starts from SpeechBrain's LibriSpeech transformer (a ``save/`` folder). The demo has no
such model, so this script trains a small model of the same structure (sizes in
``demo/asr_demo_overrides.yaml``) from scratch on ``<mini-CPC1 root>/clean_corpus`` with
``train_asr.py`` itself: Adam + Noam for ``stage_one_epochs`` epochs without SpecAugment or gradient
accumulation, a unigram tokenizer trained on the clean transcripts, the final model averaged and saved
with ACC 1.1 in ``<output_folder>/save`` (exactly what SpeechBrain's LibriSpeech recipe leaves behind). Fine-tuning then
continues from it as in the original (stage 2, SGD)::

    python demo/pretrain_asr.py --clean_corpus <root>/clean_corpus --output_folder <exp>/asr_pretrain
    python -m torch.distributed.run --standalone --nproc_per_node=2 demo/pretrain_asr.py ...   # make demo
    python train_asr.py transformer_cpc1.yaml --overrides_file=demo/asr_demo_overrides.yaml \\
        --data_folder=<exp>/cpc1_asr_data --output_folder=<exp>/asr \\
        --pretrained_save_folder=<exp>/asr_pretrain/save \\
        --tokenizer_file=<exp>/asr_pretrain/save/tokenizer.model

``make demo`` runs it on two CPU processes (DDP over gloo, one thread each: about 130 utterances/s on
2 cores against 75 for one process, measured as 3,000 utterances per 23-s epoch and 1,200 per 16 s);
the number of processes sets the effective batch, so results depend on it.
Re-running resumes (or, when finished, only re-evaluates). The WER on the held-out clean sentences
(``clean_valid.csv``) is written to ``<output_folder>/wer_clean_valid.txt`` and logged.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train_asr  # noqa: E402  (needs the repository root on sys.path)

OVERRIDES = REPO / "demo" / "asr_demo_overrides.yaml"

logger = logging.getLogger(__name__)


def pretrain_args(clean_corpus: Path, output_folder: Path, extra: list[str]) -> list[str]:
    """``train_asr.py`` arguments of the pre-training run (all epochs in stage 1)."""
    n_epochs = int(train_asr.read_overrides_file(str(OVERRIDES))["stage_one_epochs"])
    for name in ("clean_train.csv", "clean_valid.csv"):
        if not (clean_corpus / name).is_file():
            raise FileNotFoundError(f"{clean_corpus / name} not found: generate the mini-CPC1 first")
    return [
        str(REPO / "transformer_cpc1.yaml"), f"--overrides_file={OVERRIDES}",
        f"--data_folder={clean_corpus}", f"--output_folder={output_folder}",
        f"--train_csv={clean_corpus / 'clean_train.csv'}", f"--valid_csv={clean_corpus / 'clean_valid.csv'}",
        f"--test_csv=[{clean_corpus / 'clean_valid.csv'}]",
        f"--number_of_epochs={n_epochs}", f"--stage_one_epochs={n_epochs}",
        # a stand-in that learns in minutes: no SpecAugment, an update every batch (fine-tuning keeps both)
        "--fea_augment=null", "--gradient_accumulation=1",
        *extra,
    ]


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, pre-train, return the held-out clean test statistics."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean_corpus", type=Path, required=True, help="<mini-CPC1 root>/clean_corpus")
    parser.add_argument("--output_folder", type=Path, required=True, help="where save/ and logs go")
    args, extra = parser.parse_known_args(argv)  # extra: train_asr.py options, e.g. --device=cpu
    return train_asr.main(pretrain_args(args.clean_corpus, args.output_folder, extra))


if __name__ == "__main__":
    main()
