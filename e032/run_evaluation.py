"""Stage 4 on CPC2 and CPC3 runs: labels from the dataset, the fit protocols, pooled scores.

The mapping and the metrics are those of :mod:`e032.evaluation` (CPC1). What differs:

* **Labels** come from the dataset's records (:class:`e032.run_items.DatasetRun`), keyed by the
  run's CSV IDs (``<subset>_<signal>`` for CPC2), which are the keys of the similarity files.
  The dev part (fit) is the held-out 30 % of the fit split's scenes (``<subset>_<scene>``); the
  test part is the predicted split (CPC2 ``eval.N``, CPC3 ``dev`` or ``eval``), labelled from
  ``path.labels``.
* **Fit protocol**: per run, fit on dev, predict test, as CPC1. CPC2 ``partition=all`` evaluates
  the three partitions (each fitted on its own ``train.N`` dev part) and scores the three
  evaluation sets together (:func:`pooled_metrics`), the CPC2 ranking as docs/datasets.md reads it.
* **Submissions**: besides ``submission/{dev,test}_{enc,dec}_predictions<suffix>.csv`` (CSV IDs),
  the challenge file of the predicted split (:meth:`e032.datasets.Dataset.submission`) per
  representation: ``submission/<rep>/CPC2_<team>.<N>.csv``, ``CPC3_<team>.csv`` (eval) or the
  headerless ``CPC3_<team>.dev.csv``, with the challenge's signal IDs.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from e032 import evaluation as ev
from e032.data_split import read_scene_list
from e032.datasets import SignalRecord, disjoint_fit_indices
from e032.io import atomic_path
from e032.run_items import DatasetRun
from e032.tracks import TrackPaths

logger = logging.getLogger(__name__)

FIT_PROTOCOLS: Final[tuple[str, ...]] = ("dev_split", "disjoint")
MIN_FIT_PAIRS: Final[int] = 3  # fewest pairs fit_logistic accepts
HIDDEN: Final[str] = "hidden"  # listener / system of CPC3 dev and eval records (not published)


def run_labels(run: DatasetRun, items: Sequence, source: Path) -> ev.Labels:
    """Labels of ``items`` keyed by CSV ID (listener and system ``hidden`` where unknown).

    Raises
    ------
    ValueError
        Naming the list and how many of its signals have no label, and where labels are read.
    """
    labels = ev.Labels(source, {}, {}, {}, {})
    unlabelled = []
    for item in items:
        record = run.record(item)
        if record.correctness is None:
            unlabelled.append(record.signal)
            continue
        labels.correctness[item.id] = float(record.correctness)
        labels.scene[item.id] = f"{record.subset}_{record.scene or HIDDEN}"
        labels.listener[item.id] = record.listener or HIDDEN
        labels.system[item.id] = f"{record.subset}_{record.system}" if record.system else HIDDEN
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} signal(s) of {source} have no label (e.g. {unlabelled[0]}): "
            f"unpack the label archive and set path.labels to the folder of the labelled lists "
            f"(now {run.paths.test_labels_dir})"
        )
    return labels


def load_run_inputs(
    run: DatasetRun,
) -> tuple[dict[str, ev.Paired], dict[str, ev.Paired], ev.Labels]:
    """Similarities of the dev and test parts, paired with their labels by CSV ID.

    Returns
    -------
    dev, test : per representation, the paired similarities and labels.
    test_labels : the labels of the test part (listener and system of each signal).
    """
    paths = run.paths
    split_list = paths.split_list("dev")
    if not split_list.is_file():
        raise FileNotFoundError(f"no scene split {split_list}: run prepare_data.py first")
    items = run.items(read_scene_list(split_list))
    dev_items = [i for i in items if i.part == "dev"]
    test_items = [i for i in items if i.part == "test"]
    dev_labels = run_labels(run, dev_items, paths.split_list("dev"))
    test_labels = run_labels(run, test_items, list_name(run))
    files = {(part, rep): paths.similarity_json(part, rep) for part in ev.PARTS for rep in ev.REPRESENTATIONS}
    ev.check_similarity_files(files)
    dev, test = {}, {}
    for rep in ev.REPRESENTATIONS:
        dev[rep] = ev.pair_with_labels(
            ev.read_similarities(files["dev", rep]),
            dev_labels,
            files["dev", rep],
            frozenset(dev_labels.correctness),
            f"the dev scenes of {split_list}",
        )
        test[rep] = ev.pair_with_labels(
            ev.read_similarities(files["test", rep]),
            test_labels,
            files["test", rep],
            frozenset(test_labels.correctness),
            f"the {run.predict.split} list",
        )
    return dev, test, test_labels


def list_name(run: DatasetRun) -> Path:
    """The predicted split's response list (CPC3) or its folder (CPC2), for messages."""
    ds = run.predict
    return ds.list_path if hasattr(ds, "list_path") else ds.data_dir / "metadata"


def write_challenge_files(
    run: DatasetRun, results: Mapping[str, ev.RepresentationResult], team_id: str
) -> list[Path]:
    """The challenge's submission file of the predicted split, per representation."""
    fmt = run.predict.submission(team_id)
    signal_of = {item.id: item.signal for item in run.items(()) if item.part == "test"}
    written = []
    for rep, r in results.items():
        path = run.paths.exp_folder / "submission" / rep / fmt.file_name
        rows = [
            (signal_of[i], repr(float(v))) for i, v in zip(r.test.signal_ids, r.test_prediction, strict=True)
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(([fmt.header] if fmt.header else []) + rows)
        with atomic_path(path) as tmp:
            tmp.write_text(buffer.getvalue(), encoding="utf-8")
        written.append(path)
    return written


def pooled_metrics(
    per_run: Sequence[tuple[Mapping[str, ev.RepresentationResult], ev.Labels]],
) -> dict[str, dict[str, Any]]:
    """Scores of the test predictions of several runs together (CPC2: the three eval sets).

    Parameters
    ----------
    per_run : per run, its results and its test labels (for the listener and system groups).

    Returns
    -------
    Per representation: ``{"N", "RMSE", "Std", "NCC", "KT", "per_listener", "per_system"}``.
    """
    pooled = {}
    for rep in ev.REPRESENTATIONS:
        prediction = np.concatenate([r[rep].test_prediction for r, _ in per_run])
        label = np.concatenate([r[rep].test.correctness for r, _ in per_run])
        listeners = [lab.listener[s] for r, lab in per_run for s in r[rep].test.signal_ids]
        systems = [lab.system[s] for r, lab in per_run for s in r[rep].test.signal_ids]
        pooled[rep] = {
            "N": int(prediction.size),
            **ev.compute_metrics(prediction, label),
            "per_listener": ev.aggregated_metrics(prediction, label, listeners),
            "per_system": ev.aggregated_metrics(prediction, label, systems),
        }
    return pooled


def run_paths_of(cfg: Any, partition: object) -> TrackPaths:
    """The paths of one CPC2 partition of ``cfg`` (the others unchanged)."""
    from omegaconf import OmegaConf

    from e032.tracks import resolve_track

    one = OmegaConf.merge(cfg, {"partition": partition})
    return resolve_track(one)


def records_by_id(run: DatasetRun) -> dict[str, SignalRecord]:
    """CSV ID -> dataset record of every signal of ``run`` (IDs are unique across its splits)."""
    return {signal_id: record for (_, signal_id), record in run.record_of.items()}


def disjoint_refit(
    result: ev.RepresentationResult,
    records: Mapping[str, SignalRecord],
    test_labels: ev.Labels,
    initial_guess: tuple[float, float] | str = ev.INITIAL_GUESS,
    allow_degenerate: bool = False,
) -> ev.RepresentationResult:
    """Predict each test signal with a logistic fitted on the dev signals that share neither its
    listener nor its ``(subset, system)`` (pyclarity's leave-out fit; CPC2 predict.py, CPC3
    shared_predict_utils.py), and score again. ``result.mapping`` stays the fit on all of dev.

    Raises
    ------
    ValueError
        Naming a test signal whose disjoint dev set has fewer than 3 signals.
    """
    dev_records = [records[s] for s in result.dev.signal_ids]
    fits: dict[tuple[int, ...], ev.LogisticMapping] = {}
    prediction = np.empty(len(result.test.signal_ids))
    for index, signal in enumerate(result.test.signal_ids):
        keep = tuple(disjoint_fit_indices([*dev_records, records[signal]], len(dev_records)))
        if len(keep) < MIN_FIT_PAIRS:
            raise ValueError(
                f"fit_protocol=disjoint: only {len(keep)} dev signal(s) share neither "
                f"the listener nor the system of {signal}; the fit needs "
                f"{MIN_FIT_PAIRS} (use fit_protocol=dev_split)"
            )
        if keep not in fits:
            rows = list(keep)
            fits[keep] = ev.fit_logistic(
                result.dev.similarity[rows], result.dev.correctness[rows], initial_guess, allow_degenerate
            )
        prediction[index] = fits[keep].predict(result.test.similarity[index])[()]
    listeners = [test_labels.listener[s] for s in result.test.signal_ids]
    systems = [test_labels.system[s] for s in result.test.signal_ids]
    label = result.test.correctness
    return replace(
        result,
        test_prediction=prediction,
        test_metrics=ev.compute_metrics(prediction, label),
        per_listener=ev.aggregated_metrics(prediction, label, listeners),
        per_system=ev.aggregated_metrics(prediction, label, systems),
    )
