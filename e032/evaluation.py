"""Stage 4 of E032: map similarities to intelligibility and score them with the CPC1 metrics.

``infer.py`` gives, per signal, a similarity in [-1, 1] between the ASR representations of the
processed (hearing-loss simulated) speech and of the clean reference, once for the encoder ("enc")
and once for the decoder ("dec"). This module turns them into predicted intelligibility, the
percentage of words a listener got right, and scores the predictions:

1. The dev similarities, scaled by 100, are fitted to the dev labels (``correctness``) with the
   logistic ``100 / (1 + exp(-k (x - x0)))`` (``scipy.optimize.curve_fit`` from (x0, k) = (50, 1)).
2. The fitted mapping is applied to the test similarities.
3. The test predictions are scored against the test labels: RMSE, Std (standard error of the mean
   error), NCC (Pearson r) and KT (Kendall tau-b); and, as in Table 3 of the paper, the same
   metrics on the per-listener and per-system averages of predictions and labels.

Encoder and decoder are fitted and scored separately, as in the original ``evaluate.py``
(``docs/original_recipe.md`` §5).

References
----------
Z. Tu, N. Ma and J. Barker, "Exploiting hidden representations from a DNN-based speech recogniser
for speech intelligibility prediction in hearing-impaired listeners", Proc. Interspeech 2022
(arXiv:2204.04287), section 3.3 and Table 3.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import kendalltau, pearsonr

from e032 import data_split
from e032.cpc1_inputs import read_response_list
from e032.io import atomic_path, read_json, write_csv_atomic

logger = logging.getLogger(__name__)

Representation = Literal["enc", "dec"]
Part = Literal["dev", "test"]
REPRESENTATIONS: Final[tuple[Representation, ...]] = ("enc", "dec")
PARTS: Final[tuple[Part, ...]] = ("dev", "test")

SIMILARITY_SCALE: Final = 100.0  # similarities are multiplied by 100 before the fit (original)
CORRECTNESS_MAX: Final = 100.0  # upper asymptote L of the logistic: correctness is a percentage
SIMILARITY_LIMIT: Final = 1.0 + 1e-6  # cosines, with float32 rounding
INITIAL_GUESS: Final[tuple[float, float]] = (50.0, 1.0)  # (x0, k), as in the original
AUTO_START: Final = "auto"  # initial_guess value: start from the dev data (data_driven_start)
METRIC_NAMES: Final[tuple[str, ...]] = ("RMSE", "Std", "NCC", "KT")
SUBMISSION_HEADER: Final[tuple[str, str]] = ("signal_ID", "intelligibility_score")  # CPC1 format
MAX_IDS_SHOWN: Final = 10  # signal IDs listed in a pairing error


class LogisticFitError(RuntimeError):
    """The logistic mapping could not be fitted to the dev data."""


# --- logistic mapping -------------------------------------------------------------------------


def logistic(x: npt.ArrayLike, x0: float, k: float) -> npt.NDArray[np.float64]:
    """Logistic mapping from scaled similarity to predicted correctness.

    Parameters
    ----------
    x : similarity x 100, any shape.
    x0 : midpoint of the curve, in the units of ``x``.
    k : steepness (growth rate), per unit of ``x``.

    Returns
    -------
    Predicted correctness in [0, 100] (%), same shape as ``x``.

    Notes
    -----
    ``100 / (1 + exp(-k (x - x0)))``, evaluated exactly as the original does, so that
    ``curve_fit`` follows the same iterations; an overflow of ``exp`` gives the correct limit 0.

    Examples
    --------
    >>> float(logistic(50.0, x0=50.0, k=1.0))
    50.0
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):  # exp(+large) = inf -> 100 / inf = 0, the right limit
        return CORRECTNESS_MAX / (1.0 + np.exp(-k * (x - x0)))


@dataclass(frozen=True)
class LogisticMapping:
    """A fitted logistic mapping ``100 / (1 + exp(-k (x - x0)))`` on x = similarity x 100."""

    x0: float
    k: float
    initial_guess: tuple[float, float] = INITIAL_GUESS  # the (x0, k) the fit started from

    def predict(self, similarity: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Predicted correctness (%) from raw similarities (not yet scaled by 100)."""
        return logistic(SIMILARITY_SCALE * np.asarray(similarity, dtype=np.float64), self.x0, self.k)


def _check_pairs(x: npt.ArrayLike, y: npt.ArrayLike, min_n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x``, ``y`` as float64 1-D arrays of equal length >= ``min_n`` with finite values."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"{what}: expected two 1-D arrays of equal length, got shapes {x.shape} and {y.shape}"
        )
    if x.size < min_n:
        raise ValueError(f"{what}: needs at least {min_n} pairs, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{what}: values must be finite (found NaN or inf)")
    return x, y


def data_driven_start(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float]:
    """A start (x0, k) for the logistic fit whose tangent at x0 is the least-squares line of y on x.

    The logistic ``100 / (1 + exp(-k (x - x0)))`` has slope ``25 k`` at its midpoint ``x0``; matching
    the regression line's slope ``b`` and its 50 % crossing gives ``k = b / 25`` and
    ``x0 = mean(x) + (50 - mean(y)) / b``, kept inside the data's range. Not in the original (which
    always starts at (50, 1), a near-step curve from which the fit may not converge); for data such
    as the demo's, whose similarities are far from 0.5 or span a narrow range.

    Examples
    --------
    >>> x = np.linspace(20.0, 60.0, 41)
    >>> x0, k = data_driven_start(x, logistic(x, 40.0, 0.1))
    >>> round(x0, 6), round(k, 3)
    (40.0, 0.084)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    slope = float(np.cov(x, y, bias=True)[0, 1] / np.var(x))
    if slope == 0.0:
        return float(np.median(x)), 0.0
    x0 = float(np.clip(x.mean() + (CORRECTNESS_MAX / 2 - y.mean()) / slope, x.min(), x.max()))
    return x0, slope / (CORRECTNESS_MAX / 4)


def fit_logistic(
    similarity: npt.ArrayLike,
    correctness: npt.ArrayLike,
    initial_guess: tuple[float, float] | str = INITIAL_GUESS,
    allow_degenerate: bool = False,
) -> LogisticMapping:
    """Fit the logistic mapping to dev similarities and labels, as the original recipe does.

    Parameters
    ----------
    similarity : raw similarities [shape=(n,)], scaled by 100 here before the fit.
    correctness : labels [shape=(n,)], percentage of words correct in [0, 100].
    initial_guess : starting (x0, k); the original's (50, 1), or ``"auto"``: :func:`data_driven_start`.
    allow_degenerate : if True, a fit that ends at parameters the data do not determine is kept
        with a warning (what the original silently did) instead of raising.

    Returns
    -------
    The fitted mapping.

    Raises
    ------
    ValueError
        Fewer than 3 pairs, non-finite values, or all similarities equal.
    LogisticFitError
        ``curve_fit`` did not converge, or converged to parameters the data do not determine
        (singular Jacobian: the curve is flat over all the data, e.g. still at the start values).
    """
    x, y = _check_pairs(similarity, correctness, 3, "logistic fit")
    x = SIMILARITY_SCALE * x
    if np.ptp(x) == 0.0:
        raise ValueError(
            f"all {x.size} dev similarities are equal ({x[0] / SIMILARITY_SCALE:g}): "
            "a logistic mapping cannot be fitted to a constant predictor"
        )
    if isinstance(initial_guess, str):
        if initial_guess != AUTO_START:
            raise ValueError(f"initial_guess must be (x0, k) or {AUTO_START!r}, got {initial_guess!r}")
        initial_guess = data_driven_start(x, y)
    if len(initial_guess) != 2 or not np.all(np.isfinite(np.asarray(initial_guess, dtype=np.float64))):
        raise ValueError(
            f"initial_guess must be two finite numbers (x0, k) or {AUTO_START!r}, got {initial_guess!r}"
        )
    initial_guess = (float(initial_guess[0]), float(initial_guess[1]))
    data = (
        f"{x.size} dev pairs, similarity x 100 in [{x.min():.4g}, {x.max():.4g}], "
        f"correctness in [{y.min():.4g}, {y.max():.4g}], start (x0, k) = {tuple(initial_guess)}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # judged below from the covariance
        try:
            params, cov = curve_fit(logistic, x, y, p0=list(initial_guess))
        except RuntimeError as err:
            raise LogisticFitError(f"the logistic fit did not converge ({data}): {err}") from None
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(cov))):
        message = (
            f"the logistic fit is degenerate: it ended at (x0, k) = "
            f"({params[0]:.6g}, {params[1]:.6g}), parameters the data do not determine ({data}); "
            "the curve is flat over the data: check that the "
            "similarities are in [-1, 1], vary, and relate to the labels"
        )
        if not allow_degenerate:
            raise LogisticFitError(message + " (allow_degenerate_fit=true keeps it, as the original)")
        logger.warning("%s; kept because allow_degenerate_fit is set", message)
    return LogisticMapping(x0=float(params[0]), k=float(params[1]), initial_guess=initial_guess)


# --- metrics ----------------------------------------------------------------------------------


def rmse(prediction: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Root-mean-square error ``sqrt(mean((p - y)^2))``, in the units of the labels.

    Examples
    --------
    >>> rmse([1.0, 2.0], [1.0, 4.0])
    1.4142135623730951
    """
    p, y = _check_pairs(prediction, label, 1, "RMSE")
    return float(np.sqrt(np.mean((p - y) ** 2)))


def std_error(prediction: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Std of the CPC1 metrics: ``std(p - y) / sqrt(N)``, population std (ddof 0).

    This is the standard error of the mean error, not the spread of the errors.

    Examples
    --------
    >>> std_error([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 3.0, 6.0])  # errors 0, -2, 0, -2: std 1
    0.5
    """
    p, y = _check_pairs(prediction, label, 1, "Std")
    return float(np.std(p - y) / np.sqrt(p.size))


def compute_metrics(prediction: npt.ArrayLike, label: npt.ArrayLike) -> dict[str, float]:
    """Compute the four CPC1 metrics: RMSE, Std, NCC (Pearson r) and KT (Kendall tau-b).

    Parameters
    ----------
    prediction, label : [shape=(n,)], n >= 2, finite.

    Returns
    -------
    ``{"RMSE", "Std", "NCC", "KT"}`` as floats. NCC and KT are NaN (with a logged warning) when
    either input is constant, where they are undefined.
    """
    p, y = _check_pairs(prediction, label, 2, "metrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning; reported below
        ncc = float(pearsonr(p, y).statistic)
        kt = float(kendalltau(p, y).statistic)  # default variant 'b', as the original
    if np.ptp(p) == 0.0 or np.ptp(y) == 0.0:
        which = "predictions" if np.ptp(p) == 0.0 else "labels"
        logger.warning("all %d %s are equal: NCC and KT are undefined (NaN)", p.size, which)
    return {"RMSE": rmse(p, y), "Std": std_error(p, y), "NCC": ncc, "KT": kt}


def group_means(
    values: npt.ArrayLike, groups: Sequence[str]
) -> tuple[tuple[str, ...], npt.NDArray[np.float64]]:
    """Mean of ``values`` per group.

    Returns
    -------
    The sorted group names and the means [shape=(n_groups,)].

    Examples
    --------
    >>> group_means([1.0, 3.0, 10.0], ["b", "b", "a"])
    (('a', 'b'), array([10.,  2.]))
    """
    values = np.asarray(values, dtype=np.float64)
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    means = np.bincount(index, weights=values, minlength=names.size) / np.bincount(
        index, minlength=names.size
    )
    return tuple(str(n) for n in names), means


def aggregated_metrics(
    prediction: npt.ArrayLike, label: npt.ArrayLike, groups: Sequence[str]
) -> dict[str, float | int]:
    """CPC1 metrics on per-group averages (paper Table 3: per listener or per system).

    Predictions and labels are both averaged within each group, then compared across groups.

    Returns
    -------
    ``{"N": number of groups, "RMSE", "Std", "NCC", "KT"}``.
    """
    _, mean_prediction = group_means(prediction, groups)
    _, mean_label = group_means(label, groups)
    if mean_label.size < 2:  # e.g. one listener in a CPC2 eval.N, or CPC3's hidden listeners
        logger.info("%d group(s): metrics across groups are undefined (NaN)", mean_label.size)
        return {"N": int(mean_label.size), **dict.fromkeys(METRIC_NAMES, float("nan"))}
    return {"N": int(mean_label.size), **compute_metrics(mean_prediction, mean_label)}


# --- inputs -----------------------------------------------------------------------------------


def _id_list(ids: Sequence[str]) -> str:
    """Join at most :data:`MAX_IDS_SHOWN` IDs with commas, and count the rest."""
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    rest = len(ids) - MAX_IDS_SHOWN
    return shown + (f", ... and {rest} more" if rest > 0 else "")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Labels:
    """Listener responses of one CPC1 list, keyed by signal ID ``<scene>_<listener>_<system>``."""

    source: Path
    correctness: dict[str, float]  # % words correct, 0-100
    scene: dict[str, str]
    listener: dict[str, str]
    system: dict[str, str]


def read_labels(path: str | Path) -> Labels:
    """Read a CPC1 response list (``CPC1.train.json``, ``CPC1.test.json``, ...).

    Each record needs ``signal`` and ``correctness`` (a number in [0, 100]); ``scene``,
    ``listener`` and ``system`` are taken from the record, or else from the signal ID.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or malformed file; the message names the file and the first bad record.
    """
    path = Path(path)
    records = read_response_list(path)
    labels = Labels(path, {}, {}, {}, {})
    for i, record in enumerate(records):
        _add_record(labels, record, i)
    if not labels.correctness:
        raise ValueError(f"{path}: the response list is empty")
    return labels


def _add_record(labels: Labels, record: Any, index: int) -> None:
    """Validate one response record and add it to ``labels``."""
    where = f"{labels.source}, record {index}"
    if not isinstance(record, dict) or not isinstance(record.get("signal"), str):
        raise ValueError(f"{where}: expected an object with a string 'signal', got {record!r:.200}")
    signal, correctness = record["signal"], record.get("correctness")
    if not _is_number(correctness) or not 0.0 <= correctness <= CORRECTNESS_MAX:
        raise ValueError(
            f"{where} ({signal}): 'correctness' must be a number in [0, 100], got {correctness!r}"
        )
    if signal in labels.correctness and labels.correctness[signal] != correctness:
        raise ValueError(
            f"{where}: signal {signal} appears twice with different correctness "
            f"({labels.correctness[signal]} and {correctness})"
        )
    parts = signal.split("_")
    for key, position in (("scene", 0), ("listener", 1), ("system", 2)):
        value = record.get(key, parts[position] if len(parts) == 3 else None)
        if not isinstance(value, str):
            raise ValueError(
                f"{where}: no string '{key}' field, and the signal ID {signal!r} is not "
                "<scene>_<listener>_<system>"
            )
        getattr(labels, key)[signal] = value
    labels.correctness[signal] = float(correctness)


def read_similarities(path: str | Path) -> dict[str, float]:
    """Read a similarity file of ``infer.py``: a JSON object signal ID -> finite similarity.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or malformed file, naming it and the first bad entry.
    """
    path = Path(path)
    data = read_json(path, "similarity file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object signal ID -> similarity, got {type(data).__name__}")
    if not data:
        raise ValueError(f"{path}: the similarity file is empty")
    bad = [s for s, v in data.items() if not _is_number(v) or not np.isfinite(v)]
    if bad:
        raise ValueError(
            f"{path}: similarities must be finite numbers; {len(bad)} are not "
            f"(e.g. {bad[0]} -> {data[bad[0]]!r})"
        )
    outside = [s for s, v in data.items() if abs(v) > SIMILARITY_LIMIT]
    if outside:
        raise ValueError(
            f"{path}: similarities are cosines in [-1, 1] (raw, not x 100); {len(outside)} are not "
            f"(e.g. {outside[0]} -> {data[outside[0]]!r}): was the file written by infer.py?"
        )
    return {signal: float(value) for signal, value in data.items()}


def check_similarity_files(files: Mapping[tuple[Part, Representation], Path]) -> None:
    """Raise one error naming exactly which of the similarity files are missing.

    Parameters
    ----------
    files : (part, representation) -> path, e.g. the four files of ``infer.py``.

    Raises
    ------
    FileNotFoundError
        Listing the missing files and the ones found.
    """
    missing = [f"{part}/{rep}: {path}" for (part, rep), path in files.items() if not path.is_file()]
    if missing:
        found = [f"{part}/{rep}" for (part, rep), path in files.items() if path.is_file()]
        raise FileNotFoundError(
            f"{len(missing)} of the {len(files)} similarity files are missing "
            "(run infer.py first):\n  "
            + "\n  ".join(missing)
            + f"\nfound: {', '.join(found) if found else 'none'}"
        )


def read_scene_list(path: str | Path) -> frozenset[str]:
    """Read a scene list of the train/dev split (as :func:`e032.data_split.read_scene_list`)."""
    return frozenset(data_split.read_scene_list(path))


@dataclass(frozen=True)
class Paired:
    """Similarities and labels of the same signals, in the order of the similarity file."""

    signal_ids: tuple[str, ...]
    similarity: npt.NDArray[np.float64]  # raw, not scaled
    correctness: npt.NDArray[np.float64]  # %


def pair_with_labels(
    similarities: Mapping[str, float],
    labels: Labels,
    source: str | Path,
    expected_ids: Collection[str] | None = None,
    expected_name: str = "the expected signals",
) -> Paired:
    """Pair each similarity with its label by signal ID.

    Parameters
    ----------
    similarities : signal ID -> similarity, read from ``source``.
    labels : the response list holding the labels.
    source : the similarity file, for messages.
    expected_ids : if given, the exact set of signals that must have a similarity (e.g. all test
        signals, or all signals of the dev scenes); otherwise every similarity only needs a label.
    expected_name : what ``expected_ids`` are, for messages.

    Raises
    ------
    ValueError
        Listing (up to 10, with the count) the signals that have a similarity but no label, or are
        not in ``expected_ids``, and the expected signals that have no similarity.
    """
    problems = []
    unlabelled = [s for s in similarities if s not in labels.correctness]
    if unlabelled:
        problems.append(
            f"{len(unlabelled)} signal(s) in {source} have no label in {labels.source}: "
            + _id_list(unlabelled)
        )
    if expected_ids is not None:
        extra = [s for s in similarities if s not in expected_ids and s in labels.correctness]
        if extra:
            problems.append(
                f"{len(extra)} signal(s) in {source} are not in {expected_name}: {_id_list(extra)}"
            )
        absent = sorted(s for s in expected_ids if s not in similarities)
        if absent:
            problems.append(
                f"{len(absent)} labelled signal(s) have no similarity in {source}: " + _id_list(absent)
            )
    if problems:
        raise ValueError("signals of predictions and labels do not match:\n  " + "\n  ".join(problems))
    ids = tuple(similarities)
    return Paired(
        signal_ids=ids,
        similarity=np.array([similarities[s] for s in ids], dtype=np.float64),
        correctness=np.array([labels.correctness[s] for s in ids], dtype=np.float64),
    )


def dev_signal_ids(labels: Labels, dev_scenes: Collection[str]) -> frozenset[str]:
    """Return the signals of the training list whose scene is in the dev split."""
    return frozenset(s for s, scene in labels.scene.items() if scene in dev_scenes)


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepresentationResult:
    """Fit, predictions and scores of one representation (encoder or decoder)."""

    representation: str
    mapping: LogisticMapping
    dev: Paired
    test: Paired
    dev_prediction: npt.NDArray[np.float64]  # %, mapped dev similarities
    test_prediction: npt.NDArray[np.float64]  # %, mapped test similarities
    test_metrics: dict[str, float]  # per signal: the original's results
    dev_metrics: dict[str, float]  # goodness of the fit on dev
    per_listener: dict[str, float | int]  # paper Table 3
    per_system: dict[str, float | int]


def evaluate_representation(
    representation: str,
    dev: Paired,
    test: Paired,
    test_labels: Labels,
    allow_degenerate_fit: bool = False,
    initial_guess: tuple[float, float] | str = INITIAL_GUESS,
) -> RepresentationResult:
    """Fit the mapping on ``dev``, apply it to ``test`` and compute every metric.

    ``allow_degenerate_fit`` and ``initial_guess`` are passed to :func:`fit_logistic`.
    """
    mapping = fit_logistic(
        dev.similarity, dev.correctness, initial_guess=initial_guess, allow_degenerate=allow_degenerate_fit
    )
    dev_prediction = mapping.predict(dev.similarity)
    test_prediction = mapping.predict(test.similarity)
    listeners = [test_labels.listener[s] for s in test.signal_ids]
    systems = [test_labels.system[s] for s in test.signal_ids]
    logger.info(
        "%s: fitted x0=%.4f k=%.4f on %d dev signals",
        representation,
        mapping.x0,
        mapping.k,
        len(dev.signal_ids),
    )
    return RepresentationResult(
        representation=representation,
        mapping=mapping,
        dev=dev,
        test=test,
        dev_prediction=dev_prediction,
        test_prediction=test_prediction,
        test_metrics=compute_metrics(test_prediction, test.correctness),
        dev_metrics=compute_metrics(dev_prediction, dev.correctness),
        per_listener=aggregated_metrics(test_prediction, test.correctness, listeners),
        per_system=aggregated_metrics(test_prediction, test.correctness, systems),
    )


# --- outputs ----------------------------------------------------------------------------------


def _json_number(value: float | int) -> float | int | None:
    """Make a number JSON-safe: NaN and inf (undefined metrics) become None (null)."""
    if isinstance(value, int):
        return value
    return float(value) if np.isfinite(value) else None


def _json_metrics(metrics: Mapping[str, float | int]) -> dict[str, float | int | None]:
    return {name: _json_number(value) for name, value in metrics.items()}


def results_document(
    results: Mapping[str, RepresentationResult], track: str, sources: Mapping[str, str]
) -> dict[str, Any]:
    """Build the content of ``results<suffix>.json``.

    ``enc_results`` and ``dec_results`` are exactly the original's: the four metrics on the test
    signals. ``details`` adds the track, the input file names, and per representation the fitted
    mapping, the signal counts, the metrics of the fit on dev and the paper's Table 3 view.
    """
    document: dict[str, Any] = {f"{rep}_results": _json_metrics(r.test_metrics) for rep, r in results.items()}
    document["details"] = {
        "track": track,
        "files": dict(sources),
        **{
            rep: {
                "mapping": {
                    "x0": r.mapping.x0,
                    "k": r.mapping.k,
                    "initial_guess": list(r.mapping.initial_guess),
                    "similarity_scale": SIMILARITY_SCALE,
                },
                "n_dev": len(r.dev.signal_ids),
                "n_test": len(r.test.signal_ids),
                "dev_fit": _json_metrics(r.dev_metrics),
                "per_listener": _json_metrics(r.per_listener),
                "per_system": _json_metrics(r.per_system),
            }
            for rep, r in results.items()
        },
    }
    return document


def write_submission_csv(path: str | Path, signal_ids: Sequence[str], scores: npt.ArrayLike) -> None:
    """Write a CPC1 submission CSV ``signal_ID,intelligibility_score`` (scores in %) atomically."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(signal_ids) != scores.size:
        raise ValueError(f"{len(signal_ids)} signal IDs but {scores.size} scores")
    write_csv_atomic(
        path,
        SUBMISSION_HEADER,
        [(s, repr(float(v))) for s, v in zip(signal_ids, scores, strict=True)],
    )


def plot_results(results: Mapping[str, RepresentationResult], path: str | Path, title: str) -> None:
    """Save a PNG: per representation, the dev fit (left) and test predictions vs labels (right)."""
    from matplotlib.figure import Figure  # object API: no pyplot state, renders with Agg

    fig = Figure(figsize=(10, 4.2 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 2, squeeze=False)
    for row, (rep, r) in zip(axes, results.items(), strict=True):
        _plot_fit(row[0], rep, r)
        _plot_test(row[1], rep, r)
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _plot_fit(ax: Any, rep: str, r: RepresentationResult) -> None:
    x_dev = SIMILARITY_SCALE * r.dev.similarity
    x_test = SIMILARITY_SCALE * r.test.similarity
    ax.scatter(x_dev, r.dev.correctness, s=8, alpha=0.4, zorder=2, label=f"dev (N={x_dev.size})")
    ax.scatter(x_test, r.test.correctness, s=8, alpha=0.25, marker="x", label=f"test (N={x_test.size})")
    low, high = min(x_dev.min(), x_test.min()), max(x_dev.max(), x_test.max())
    grid = np.linspace(low, high, 400)
    ax.plot(
        grid,
        logistic(grid, r.mapping.x0, r.mapping.k),
        color="k",
        label=f"fit: x0={r.mapping.x0:.3g}, k={r.mapping.k:.3g}",
    )
    ax.set(
        xlabel=f"{rep} similarity x 100",
        ylabel="correctness (%)",
        title=f"{rep}: logistic mapping fitted on dev",
        ylim=(-5, 105),
    )
    ax.legend(loc="upper left", fontsize="small")


def _plot_test(ax: Any, rep: str, r: RepresentationResult) -> None:
    m = r.test_metrics
    ax.scatter(r.test_prediction, r.test.correctness, s=8, alpha=0.4)
    ax.plot([0, 100], [0, 100], color="k", linewidth=0.8)
    ax.set(
        xlabel="predicted correctness (%)",
        ylabel="measured correctness (%)",
        xlim=(-5, 105),
        ylim=(-5, 105),
        title=f"{rep}: test RMSE {m['RMSE']:.2f}, NCC {m['NCC']:.3f}, KT {m['KT']:.3f}",
    )


def format_results_table(results: Mapping[str, RepresentationResult], track: str) -> str:
    """Format every metric as a plain-text table, with the fitted mappings and the counts."""
    header = f"{'rep':<4} {'view':<13} {'N':>6} {'RMSE':>8} {'Std':>7} {'NCC':>7} {'KT':>7}"
    lines = [f"E032 evaluation, {track} track", header, "-" * len(header)]
    for rep, r in results.items():
        views = (
            ("test/signal", len(r.test.signal_ids), r.test_metrics),
            ("test/listener", r.per_listener["N"], r.per_listener),
            ("test/system", r.per_system["N"], r.per_system),
            ("dev/signal", len(r.dev.signal_ids), r.dev_metrics),
        )
        for view, n, m in views:
            lines.append(
                f"{rep:<4} {view:<13} {n:>6d} {m['RMSE']:>8.3f} {m['Std']:>7.3f} "
                f"{m['NCC']:>7.3f} {m['KT']:>7.3f}"
            )
    lines.append("-" * len(header))
    lines.append("mapping 100 / (1 + exp(-k (x - x0))), x = similarity x 100, fitted on dev:")
    lines += [
        f"{rep}: x0 = {r.mapping.x0:.4f}, k = {r.mapping.k:.4f} (N = {len(r.dev.signal_ids)})"
        for rep, r in results.items()
    ]
    return "\n".join(lines)
