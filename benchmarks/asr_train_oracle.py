"""Check our fine-tuning against a training-step oracle made with the original code on SpeechBrain 0.5.9.

    python benchmarks/asr_train_oracle.py --oracle tests/data/asr_train_reference \
        --checkpoint tests/data/train_asr/tiny_ckpt_05x/save [--runs main] [--set ctc_lengths=round ...]

``--oracle`` takes the full oracle folder as well (the bundled one is a trimmed copy of it).

Runs ``ASRBrain`` with the modules of ``transformer_cpc1.yaml`` (what ``train_asr.py`` trains) on the
oracle folder's batch from the given checkpoint, with the seeds, schedule and overrides read from the
folder, and prints per run (``main``, ``frozen_norm``, ``carry_over``) the largest deviation of losses,
learning rates, gradient norms, gradients, parameters and features, with the oracle's tolerances
(e032/asr/train_oracle.py). ``--set KEY=VALUE`` flips yaml switches (e.g. ``fbank_floor=utterance``) to
measure their effect. Exit status 0 only when every value is within its tolerance.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from ruamel.yaml import YAML  # noqa: E402

from e032.asr.train_oracle import all_within, check_oracle, format_table  # noqa: E402


def parse_switch(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as YAML (``false``, ``round``, ``1e-3``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, YAML(typ="safe", pure=True).load(value)


def main(argv: list[str] | None = None) -> int:
    """Run the check; print the table; return the exit status (0: every value within tolerance)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--oracle", type=Path, required=True, help="oracle folder (meta.json, batch.npz, runs)"
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="starting save/ folder of the oracle")
    parser.add_argument("--yaml", type=Path, default=REPO / "transformer_cpc1.yaml")
    parser.add_argument("--runs", nargs="+", default=None, help="default: every run of the folder")
    parser.add_argument(
        "--set",
        dest="switches",
        type=parse_switch,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="yaml override applied last (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = check_oracle(args.oracle, args.checkpoint, args.yaml, args.runs, dict(args.switches))
    print(format_table(results))
    ok = all_within(results)
    print("all within tolerance" if ok else "deviations beyond tolerance (FAIL)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
