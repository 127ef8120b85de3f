"""Generate the embedded mini-CPC1 dataset (offline TTS; the default input of `make demo` and tests).

Examples
--------
python demo/make_mini_cpc1.py --root demo_data --preset demo
python demo/make_mini_cpc1.py --root /tmp/mini --preset tiny --seed 3 --n-test-scenes 10
python demo/make_mini_cpc1.py --root /tmp/mini_cpc3 --preset tiny --layout cpc3
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from e032.minicpc1.generator import generate  # noqa: E402
from e032.minicpc1.layouts import LAYOUTS, generate_layout  # noqa: E402
from e032.minicpc1.presets import PRESETS  # noqa: E402

SIZE_OPTIONS = (
    "n_train_scenes",
    "n_test_scenes",
    "signals_per_scene",
    "n_listeners",
    "n_babble_sentences",
    "n_clean_train",
    "n_clean_valid",
    "clean_voices_per_sentence",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: a preset plus optional overrides of its sizes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", required=True, type=Path, help="output folder (CPC1 layout is written under it)"
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="demo", help="size preset (default: demo)"
    )
    parser.add_argument("--seed", type=int, default=None, help="dataset seed (default: the preset's, 0)")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="cpc1",
        help="folder and file layout: cpc1 (default), cpc2 or cpc3 (32 kHz 16-bit)",
    )
    parser.add_argument("--num-workers", type=int, default=None, help="worker processes (0 = all cores)")
    for name in SIZE_OPTIONS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=None, help=f"override the preset's {name}"
        )
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if --root already holds this dataset, complete"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate and print a one-line summary."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    overrides = {name: getattr(args, name) for name in (*SIZE_OPTIONS, "seed", "num_workers")}
    cfg = PRESETS[args.preset].replace(**overrides)
    if args.layout != "cpc1":
        s = generate_layout(cfg, args.root, args.layout, force=args.force)
        counts = ", ".join(f"{k[2:]} {v}" for k, v in s.items() if k.startswith("n_"))
        print(
            f"mini-{args.layout.upper()} '{args.preset}' (seed {cfg.seed}) -> {s['root']}: "
            f"{counts}; "
            + (
                "already complete, reused (--force regenerates)"
                if s["reused"]
                else f"{s['wall_s']:.1f} s wall"
            )
        )
        return
    s = generate(cfg, args.root, force=args.force)
    ceiling = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(
        f"mini-CPC1 '{args.preset}' (seed {cfg.seed}) -> {s['root']}: train {s['n_train']} / train_indep "
        f"{s['n_train_indep']} / test {s['n_test']} / test_indep {s['n_test_indep']} signals, "
        f"{s['n_listeners']} listeners, {s['n_clean_train']}+{s['n_clean_valid']} clean utterances; "
        f"ceiling NCC test {ceiling(s['ceiling_test'])}, test_indep {ceiling(s['ceiling_test_indep'])}; "
        + (
            "already complete, reused (--force regenerates)"
            if s["reused"]
            else f"{s['wall_s']:.1f} s wall, {s['cpu_s']:.1f} s CPU"
        )
    )


if __name__ == "__main__":
    main()
