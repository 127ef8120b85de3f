#!/usr/bin/env python3
"""Time training steps of the full-size E032 transformer (transformer_cpc1.yaml) on one device.

One step = ``ASRBrain.fit_batch`` on a batch of random 16 kHz waveforms with random transcripts:
features, SpecAugment, forward, 0.3 CTC + 0.7 KL loss, backward, gradient clipping, optimiser step
(accumulation 1, so every step updates), Noam. Prints and optionally writes a JSON summary.

    python benchmarks/asr_train_step.py --batch_size 16 --duration_s 4 --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml

REPO = Path(__file__).resolve().parents[1]

from e032.asr.training import ASRBrain  # noqa: E402


class FakeBatch:
    """The fields ``ASRBrain`` reads from a SpeechBrain ``PaddedBatch``."""

    def __init__(
        self, batch_size: int, n_samples: int, n_tokens: int, vocab: int, generator: torch.Generator
    ):
        lens = torch.ones(batch_size)
        self.sig = (0.1 * torch.randn(batch_size, n_samples, generator=generator), lens)
        tokens = torch.randint(3, vocab, (batch_size, n_tokens), generator=generator)
        self.tokens_bos = (torch.cat([torch.ones(batch_size, 1, dtype=torch.long), tokens], 1), lens)
        self.tokens_eos = (torch.cat([tokens, 2 * torch.ones(batch_size, 1, dtype=torch.long)], 1), lens)
        self.tokens = (tokens, lens)

    def to(self, device):
        for name in ("sig", "tokens_bos", "tokens_eos", "tokens"):
            x, lens = getattr(self, name)
            setattr(self, name, (x.to(device), lens.to(device)))
        return self


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--duration_s", type=float, default=4.0)
    parser.add_argument("--n_tokens", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--optimizer", choices=["Adam", "SGD"], default="SGD")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open(REPO / "transformer_cpc1.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, {"data_folder": tmp, "output_folder": tmp, "gradient_accumulation": 1})
        brain = ASRBrain(
            modules=hparams["modules"],
            opt_class=hparams[args.optimizer],
            hparams=hparams,
            run_opts={"device": args.device, "noprogressbar": True},
        )
        brain.init_optimizers()
        brain.modules.train()
        gen = torch.Generator().manual_seed(0)
        batch = FakeBatch(
            args.batch_size, int(args.duration_s * 16000), args.n_tokens, hparams["output_neurons"], gen
        )
        times = []
        for i in range(args.steps + 2):  # 2 warm-up steps
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            brain.step = i + 1
            loss = brain.fit_batch(batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        times = sorted(times[2:])
        summary = {
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "batch_size": args.batch_size,
            "duration_s": args.duration_s,
            "optimizer": args.optimizer,
            "n_parameters": sum(p.numel() for p in hparams["model"].parameters()),
            "step_s_median": times[len(times) // 2],
            "step_s_min": times[0],
            "step_s_max": times[-1],
            "loss_last": float(loss),
            "max_memory_gib": (
                torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
            ),
        }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
