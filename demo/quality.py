#!/usr/bin/env python3
"""The demo's quality check: the recipe's test scores beside the two bars they are judged against.

Reads what ``make demo`` leaves behind (``<root>/e032/results.json``, the labels and the generator's
``latent/signals.json``) and prints, for the closed-track test set:

* the recipe's RMSE and NCC for the encoder and the decoder (from ``results.json``);
* the **dev-mean predictor**: every test signal predicted at the mean correctness of the dev signals
  (its RMSE is the bar the recipe's RMSE must beat);
* the **ceiling**: the NCC of the synthetic listener's own word probabilities (100 p) with its labels
  (no predictor can expect more), and the quality target NCC >= 0.8 x ceiling.

It also writes them to ``<exp>/demo_quality.json``. Usage::

    python demo/quality.py --root demo_data [--exp demo_data/e032]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir  # noqa: E402

from e032 import evaluation as ev  # noqa: E402
from e032.io import read_json, write_json_atomic  # noqa: E402
from e032.tracks import TrackPaths, resolve_track  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_FRACTION_OF_CEILING = 0.8  # issue 7: NCC >= 0.8 x ceiling


def closed_track_paths(root: Path, exp: Path | None = None) -> TrackPaths:
    """The recipe's own paths (config.yaml) for ``path.root=root`` [and ``path.exp_folder=exp``]."""
    overrides = [f"path.root={root.resolve()}", "cpc1_track=closed"]
    if exp is not None:
        overrides.append(f"path.exp_folder={exp.resolve()}")
    with initialize_config_dir(config_dir=str(REPO), version_base=None):
        return resolve_track(compose("config", overrides=overrides))


def quality(root: Path, exp: Path | None = None) -> dict:
    """Recipe scores, dev-mean predictor, ceiling and target of the closed-track test set.

    ``exp`` is the experiment folder (default: the recipe's ``path.exp_folder``, ``<root>/e032``).
    """
    paths = closed_track_paths(root, exp)
    results = read_json(paths.results_json, "results file")
    train_labels = ev.read_labels(paths.responses_json("train"))
    test_labels = ev.read_labels(paths.test_labels_json())
    latent = {s["signal"]: s for s in read_json(root / "latent" / "signals.json", "latent signal file")}

    test_ids = sorted(test_labels.correctness)
    test_y = np.array([test_labels.correctness[s] for s in test_ids])
    dev_ids = ev.dev_signal_ids(train_labels, ev.read_scene_list(paths.split_list("dev")))
    dev_mean = float(np.mean([train_labels.correctness[s] for s in dev_ids]))
    ceiling = float(ev.compute_metrics([100 * latent[s]["p"] for s in test_ids], test_y)["NCC"])
    target = TARGET_FRACTION_OF_CEILING * ceiling
    report = {
        "n_test": len(test_ids),
        "dev_mean": dev_mean,
        "dev_mean_rmse": ev.rmse(np.full(test_y.shape, dev_mean), test_y),
        "ceiling_ncc": ceiling,
        "target_ncc": target,
    }
    for rep in ev.REPRESENTATIONS:
        scores = results[f"{rep}_results"]
        ncc = scores["NCC"]
        report[rep] = {
            "RMSE": scores["RMSE"],
            "NCC": ncc,
            "KT": scores["KT"],
            "beats_dev_mean": scores["RMSE"] < report["dev_mean_rmse"],
            "meets_ncc_target": ncc is not None and ncc >= target,
        }
    return report


def format_report(report: dict) -> str:
    """A few lines for the terminal."""
    lines = [
        f"demo quality, closed-track test set (N = {report['n_test']}):",
        f"  ceiling NCC {report['ceiling_ncc']:.3f} -> target NCC >= {report['target_ncc']:.3f}; "
        f"dev-mean predictor ({report['dev_mean']:.1f}) RMSE {report['dev_mean_rmse']:.1f}",
    ]
    for rep in ev.REPRESENTATIONS:
        r = report[rep]
        ncc = "undefined" if r["NCC"] is None else f"{r['NCC']:.3f}"
        lines.append(
            f"  {rep}: RMSE {r['RMSE']:.1f} "
            f"({'beats' if r['beats_dev_mean'] else 'does not beat'} the dev mean), "
            f"NCC {ncc} ({'meets' if r['meets_ncc_target'] else 'below'} the target)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("demo_data"), help="the demo's mini-CPC1 root")
    parser.add_argument("--exp", type=Path, default=None, help="experiment folder (default <root>/e032)")
    args = parser.parse_args(argv)
    report = quality(args.root, args.exp)
    write_json_atomic(closed_track_paths(args.root, args.exp).exp_folder / "demo_quality.json", report)
    print(format_report(report))
    return report


if __name__ == "__main__":
    main()
