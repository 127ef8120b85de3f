#!/usr/bin/env python3
"""Re-create the demo's pre-trained stand-in ASR (``make standin``; docs/standin_asr.md).

Three steps, each resumable (a killed run, re-run, continues and gives the same files)::

    python demo/make_standin.py corpus --out standin_build            # TTS + degradations
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        demo/make_standin.py train --out standin_build                 # pre-training (DDP, CPU or GPU)
    python demo/make_standin.py card --out standin_build --ship demo/standin_asr   # WER card, ship

``train`` passes any further ``--key=value`` to ``train_asr.py`` (e.g. ``--device=cuda``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from standin.corpus import CorpusConfig, build  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Parse the step and run it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=("corpus", "train", "card"))
    parser.add_argument("--out", type=Path, required=True, help="build folder (corpus/, train/)")
    parser.add_argument("--seed", type=int, default=0, help="corpus and training seed")
    parser.add_argument("--n-train", type=int, default=CorpusConfig.n_train, help="training utterances")
    parser.add_argument("--n-valid", type=int, default=CorpusConfig.n_valid, help="validation utterances")
    parser.add_argument(
        "--n-card", type=int, default=CorpusConfig.n_card, help="card utterances per condition"
    )
    parser.add_argument("--num-workers", type=int, default=0, help="corpus worker processes (0 = all cores)")
    parser.add_argument("--ship", type=Path, default=None, help="card: copy the final model here")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.step == "corpus":
        cfg = CorpusConfig(args.n_train, args.n_valid, args.n_card, args.seed, args.num_workers)
        summary = build(cfg, args.out / "corpus")
        print(
            f"stand-in corpus: {summary['n_utterances']} utterances, {summary['hours']:.1f} h "
            f"-> {args.out / 'corpus'}"
        )
    elif args.step == "train":
        from standin.train import pretrain

        pretrain(args.out / "corpus", args.out / "train", args.seed, extra)
    else:
        from standin.card import ship

        if args.ship is None:
            parser.error("card needs --ship FOLDER (where the final model and its card go)")
        card = ship(args.out, args.ship, REPO, read_stage_times(args.out / "stage_times.txt"))
        print(
            f"stand-in -> {args.ship}: {card['model']['n_parameters']:,} parameters, WER % "
            + ", ".join(f"{k} {v:.1f}" for k, v in card["wer_percent"].items())
        )


def read_stage_times(path: Path) -> dict[str, float]:
    """Wall seconds per step, summed over the runs recorded by demo/standin.sh (empty if none)."""
    times: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, seconds = line.split()
            times[name] = times.get(name, 0.0) + float(seconds)
    return times


if __name__ == "__main__":
    main()
