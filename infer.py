"""E032 inference: encoder and decoder hidden-representation similarities, processed vs clean.

For every dev and test signal, the four mono 16 kHz files (MSBG-processed left/right, clean
reference left/right) listed by the CSVs of ``<exp>/cpc1_asr_data<track>/`` go through the
fine-tuned ASR; the similarities go to ``<exp>/{dev,test}_{enc,dec}_similarity<track suffix>.json``.
The stages live in :mod:`e032.inference` (docs/asr_infer.md).

    python infer.py path.root=/data/cpc1 [cpc1_track=open] [device=cpu] [asr_output_folder=...]
        [infer_batch_size=auto]
"""

from __future__ import annotations

import logging

import hydra
import torch
from omegaconf import DictConfig

import e032.hydra_logs  # noqa: F401  (registers the resolver of hydra.run.dir)
from e032.inference import (  # noqa: F401  (the API tests and notebooks use through this script)
    PARTS,
    asr_from_config,
    compute_part,
    infer_part,
    pair_representations,
    read_mono,
    signal_similarities,
    signal_table,
)
from e032.io import explain_os_errors
from e032.tracks import resolve_track
from msbg.parallel import pin_threads

logger = logging.getLogger(__name__)


@hydra.main(version_base=None, config_path=".", config_name="config")
@explain_os_errors
def main(cfg: DictConfig) -> None:
    """Compute the dev and test similarity files of the configured track."""
    if int(cfg.infer_threads) > 0:
        pin_threads(int(cfg.infer_threads))
    paths = resolve_track(cfg)
    # a context, not a global switch: callers (tests, notebooks) keep autograd
    with torch.no_grad():
        asr = asr_from_config(cfg, paths)
        logger.info(
            "ASR on %s, decoder representation %s, search arithmetic %s",
            asr.device,
            asr.decoder_representation,
            asr.searcher.arithmetic(asr.device),
        )
        for part in PARTS:
            infer_part(cfg, paths, asr, part)


if __name__ == "__main__":
    main()
