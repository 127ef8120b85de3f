"""Per-step cost of the beam search with the full-size E032 model (random weights), ours vs the original.

    python benchmarks/asr_full_size_step.py [--device cpu] [--threads 1] [--steps 10]

Builds transformer_cpc1.yaml at full size (161.6 M parameters, random weights, ~0.7 GB), encodes a 2-s
oracle input and runs ``--steps`` search steps with our search (incremental decoder, fast CTC scorer)
and with the original's arithmetic (every prefix re-decoded, per-token CTC recursion).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from e032.asr.model import ASRModel, load_hparams  # noqa: E402


def main() -> None:
    """Time encoder and search steps; prints CPU and wall seconds."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--original", action="store_true", help="also time the original's arithmetic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wav = np.load(REPO / "tests" / "data" / "asr_reference" / "oracle" / "in0_A_left_ref.npz")["wav"]
    n_frames = 51  # encoder frames of this 2-s input
    hparams = load_hparams(REPO / "transformer_cpc1.yaml", {"max_decode_ratio": args.steps / n_frames + 1e-9})
    hparams["normalize"]._load_statistics_dict(
        {"count": 1, "glob_mean": torch.zeros(80), "glob_std": torch.ones(80)}
    )
    asr = ASRModel(hparams, torch.device(args.device), epoch=120)
    sync = torch.cuda.synchronize if asr.device.type == "cuda" else (lambda: None)
    asr.encode(wav)  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    enc = asr.encode(wav)
    sync()
    print(
        f"encoder, 2 s of audio: cpu {time.process_time() - cpu:.3f} s, "
        f"wall {time.perf_counter() - wall:.3f} s"
    )
    modes = [("ours", "fast", True)] + (
        [("original arithmetic", "reference", False)] if args.original else []
    )
    for label, scorer, cache in modes:
        asr.searcher.ctc_scorer, asr.searcher.decoder_cache = scorer, cache
        cpu, wall = time.process_time(), time.perf_counter()
        result = asr.search(enc)
        sync()
        steps = result.n_steps[0]
        print(
            f"{label}: {steps} steps, cpu {(time.process_time() - cpu) / steps:.3f} s/step, "
            f"wall {(time.perf_counter() - wall) / steps:.3f} s/step"
        )


if __name__ == "__main__":
    main()
