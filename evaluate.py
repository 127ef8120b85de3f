"""Stage 4 of E032: map the similarities of ``infer.py`` to intelligibility and score them.

Fits the logistic mapping on the dev similarities, applies it to the test similarities, scores them
against the test labels (RMSE, Std, NCC, KT; per signal, per listener and per system) for the
encoder and the decoder separately, and writes under ``path.exp_folder``:

* ``results<suffix>.json``: ``{"enc_results": {...}, "dec_results": {...}, "details": {...}}``;
* ``results<suffix>.png``: the fitted curves and the test predictions vs labels;
* ``submission/{dev,test}_{enc,dec}_predictions<suffix>.csv``: CPC1 submission CSVs.

``<suffix>`` is empty for the closed track and ``_indep`` for the open one. Usage::

    python evaluate.py path.root=/data/cpc1 [cpc1_track=open] [path.test_labels=/data/labels]
    python evaluate.py dataset=cpc2 partition=all path.root=/data/cpc2   # three partitions, pooled
    python evaluate.py dataset=cpc3 split=dev path.root=/data/cpc3
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

import e032.hydra_logs  # noqa: F401  (registers the resolver of hydra.run.dir)
from e032 import evaluation as ev
from e032 import run_evaluation as rev
from e032.datasets import FIT_PAIRS
from e032.io import explain_os_errors, read_json, write_json_atomic
from e032.run_items import DatasetRun
from e032.tracks import TrackPaths, resolve_track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationInputs:
    """Dev and test pairs of both representations, and the test labels."""

    dev: dict[str, ev.Paired]
    test: dict[str, ev.Paired]
    test_labels: ev.Labels


def load_inputs(paths: TrackPaths) -> EvaluationInputs:
    """Read the four similarity files and the labels, and pair them by signal ID.

    Dev signals must be exactly the signals of the dev scenes when the split list of
    ``prepare_data.py`` exists (otherwise they only need a label); test signals must be exactly
    the signals of the test list.
    """
    files = {(part, rep): paths.similarity_json(part, rep) for part in ev.PARTS for rep in ev.REPRESENTATIONS}
    ev.check_similarity_files(files)
    dev_labels = ev.read_labels(paths.responses_json("train"))
    test_labels = ev.read_labels(paths.test_labels_json())
    dev_ids, dev_name = None, f"the dev scenes of {paths.split_list('dev')}"
    if paths.split_list("dev").is_file():
        dev_ids = ev.dev_signal_ids(dev_labels, ev.read_scene_list(paths.split_list("dev")))
    else:
        logger.warning(
            "no dev split list at %s: dev signals are not checked for completeness",
            paths.split_list("dev"),
        )
    dev, test = {}, {}
    for rep in ev.REPRESENTATIONS:
        dev_file, test_file = files["dev", rep], files["test", rep]
        dev[rep] = ev.pair_with_labels(
            ev.read_similarities(dev_file), dev_labels, dev_file, dev_ids, dev_name
        )
        test[rep] = ev.pair_with_labels(
            ev.read_similarities(test_file),
            test_labels,
            test_file,
            frozenset(test_labels.correctness),
            "the test list",
        )
    return EvaluationInputs(dev=dev, test=test, test_labels=test_labels)


def evaluate_track(
    inputs: EvaluationInputs,
    allow_degenerate_fit: bool = False,
    initial_guess: tuple[float, float] | str = ev.INITIAL_GUESS,
) -> dict[str, ev.RepresentationResult]:
    """Fit and score the encoder and the decoder separately."""
    return {
        rep: ev.evaluate_representation(
            rep,
            inputs.dev[rep],
            inputs.test[rep],
            inputs.test_labels,
            allow_degenerate_fit,
            initial_guess,
        )
        for rep in ev.REPRESENTATIONS
    }


def initial_guess_from_config(value: Any) -> tuple[float, float] | str:
    """``fit_initial_guess``: a list ``[x0, k]`` or ``auto``; one clear error otherwise."""
    if isinstance(value, str):
        if value != ev.AUTO_START:
            raise ValueError(f"fit_initial_guess must be [x0, k] or {ev.AUTO_START}, got {value!r}")
        return value
    values = list(value) if isinstance(value, ListConfig | list | tuple) else None
    if values is None or len(values) != 2 or not all(isinstance(v, int | float) for v in values):
        raise ValueError(f"fit_initial_guess must be [x0, k] or {ev.AUTO_START}, got {value!r}")
    return float(values[0]), float(values[1])


def write_outputs(
    paths: TrackPaths,
    results: dict[str, ev.RepresentationResult],
    label_files: tuple[str, str] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Write the results JSON, the submission CSVs and the plot; return the results document.

    ``label_files`` names the dev and test label files (default: CPC1's), ``title`` the plot's.
    """
    sources = {f"{part}_{rep}": paths.similarity_json(part, rep).name for part in ev.PARTS for rep in results}
    dev_labels, test_labels = label_files or (
        paths.responses_json("train").name,
        paths.test_labels_json().name,
    )
    sources |= {"dev_labels": dev_labels, "test_labels": test_labels}
    document = ev.results_document(results, paths.track, sources)
    write_json_atomic(paths.results_json, document)
    for rep, r in results.items():
        ev.write_submission_csv(paths.submission_csv("dev", rep), r.dev.signal_ids, r.dev_prediction)
        ev.write_submission_csv(paths.submission_csv("test", rep), r.test.signal_ids, r.test_prediction)
    ev.plot_results(results, paths.results_plot, title or f"E032, CPC1 {paths.track} track")
    logger.info(
        "wrote %s, %s and %s",
        paths.results_json,
        paths.results_plot,
        paths.submission_csv("test", "enc").parent,
    )
    return document


def evaluate_dataset_run(
    cfg: DictConfig, partition: Any, initial_guess: tuple[float, float] | str
) -> tuple[dict[str, ev.RepresentationResult], ev.Labels, TrackPaths]:
    """Evaluate one CPC2 partition or CPC3 run: fit on its dev part, score its test part, write
    its results and submissions (the challenge's file name included)."""
    run_cfg = OmegaConf.merge(cfg, {"partition": partition})
    paths = resolve_track(run_cfg)
    run = DatasetRun(run_cfg, paths)
    dev, test, test_labels = rev.load_run_inputs(run)
    results = evaluate_track(
        EvaluationInputs(dev, test, test_labels), bool(cfg.allow_degenerate_fit), initial_guess
    )
    if cfg.fit_protocol == "disjoint":
        paths = replace(paths, track=f"{paths.track}, disjoint fit")
        records = rev.records_by_id(run)
        results = {
            rep: rev.disjoint_refit(r, records, test_labels, initial_guess, bool(cfg.allow_degenerate_fit))
            for rep, r in results.items()
        }
    write_outputs(
        paths, results, (paths.split_list("dev").name, rev.list_name(run).name), f"E032, {paths.track}"
    )
    for path in rev.write_challenge_files(run, results, str(cfg.team_id)):
        logger.info("challenge submission: %s", path)
    print(ev.format_results_table(results, paths.track))  # CLI summary
    print(f"results: {paths.results_json}")
    return results, test_labels, paths


def evaluate_dataset(cfg: DictConfig, initial_guess: tuple[float, float] | str) -> dict[str, Any]:
    """CPC2/CPC3: one run, or (CPC2 ``partition=all``) the three partitions and their pooled
    scores in ``<exp>/results_cpc2_pooled.json``."""
    if str(cfg.fit_protocol) not in rev.FIT_PROTOCOLS:
        raise ValueError(
            f"fit_protocol must be one of {list(rev.FIT_PROTOCOLS)}, got " f"{cfg.fit_protocol!r}"
        )
    pooled = str(cfg.dataset) == "cpc2" and str(cfg.partition) == "all"
    partitions = [pair[1].split(".")[1] for pair in FIT_PAIRS["cpc2"]] if pooled else [cfg.partition]
    per_run = []
    for partition in partitions:
        results, labels, paths = evaluate_dataset_run(cfg, partition, initial_guess)
        per_run.append((results, labels))
    if not pooled:
        return read_json(paths.results_json)
    document = {
        "pooled": _json_safe(rev.pooled_metrics(per_run)),
        "partitions": [f"eval.{n}" for n in partitions],
    }
    path = paths.exp_folder / "results_cpc2_pooled.json"
    write_json_atomic(path, document)
    for rep, metrics in document["pooled"].items():
        print(
            f"pooled eval.1-3, {rep}: N={metrics['N']} RMSE={metrics['RMSE']} "
            f"NCC={metrics['NCC']} KT={metrics['KT']}"
        )
    print(f"pooled: {path}")
    return document


def _json_safe(value: Any) -> Any:
    """NaN and inf (undefined metrics) become None, recursively."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@hydra.main(version_base=None, config_path=".", config_name="config")
@explain_os_errors
def main(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate one track: load, fit and score, write, and print the results table."""
    initial_guess = initial_guess_from_config(cfg.get("fit_initial_guess", list(ev.INITIAL_GUESS)))
    if "dataset" in cfg and str(cfg.dataset) != "cpc1":
        return evaluate_dataset(cfg, initial_guess)
    paths = resolve_track(cfg)
    results = evaluate_track(load_inputs(paths), bool(cfg.allow_degenerate_fit), initial_guess)
    document = write_outputs(paths, results)
    print(ev.format_results_table(results, paths.track))  # CLI summary
    print(f"results: {paths.results_json}\nplot:    {paths.results_plot}")
    return document


if __name__ == "__main__":
    main()
