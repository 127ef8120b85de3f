"""Stages of ``prepare_data.py``: inputs, shards, MSBG units, 16 kHz units (notes §2).

The script wires these together; each function does one job. Outputs of every stage are written
atomically, and skipped only while the stage record (:mod:`e032.records`) says that their inputs
and parameters are unchanged, so any stage can be killed and re-run, and N cluster jobs can share
the work through :func:`shard` (each takes every N-th signal of a sorted list).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import soundfile as sf

from e032.cpc1_inputs import (
    check_dataset_folders,
    check_lengths,
    check_listeners,
    check_output_folders,
    check_wav_headers,
    load_records,
)
from e032.ids import check_record_ids
from e032.io import read_wav, write_wav_atomic
from e032.manifests import EARS, KINDS, SignalItem, item_wav
from e032.records import RecordSet, Unit, settings_digest
from e032.resample import (
    RESAMPLER_STAMPS,
    RESAMPLERS,
    MonoSplitJob,
    MonoSplitSettings,
    resample,
    run_mono_split,
)
from e032.run_items import TRIM_MODES
from e032.tracks import TrackPaths
from msbg.parallel import TextProgress, run_pool
from msbg.tables import MSBG_SAMPLE_RATE

logger = logging.getLogger(__name__)

SPLITS: tuple[Literal["train", "test"], ...] = ("train", "test")
STAGES = ("all", "split", "msbg", "resample", "merge")
WAV_SUBTYPES = ("PCM_16", "FLOAT")
MSBG_MODES: dict[str, bool] = {"on": True, "off": False}
RANGES: dict[str, tuple[float, float]] = {  # numeric settings of prepare_data: [low, high]
    "trim_s": (0.0, 60.0),
    "target_sample_rate": (8000, 48000),
    "dev_percent": (0.0, 1.0),
    "input_length_tolerance_s": (0.0, 10.0),
}
CLIP_WARN_FRACTION = 0.01  # warn about a 16-bit file with more than 1 % of its samples clipped
T = TypeVar("T")


def msbg_enabled(value: object) -> bool:
    """The ``msbg_mode`` option: ``on`` / ``off`` (YAML may give them as booleans).

    Raises
    ------
    ValueError
        For any other value.

    Examples
    --------
    >>> msbg_enabled("off"), msbg_enabled(True)
    (False, True)
    """
    if isinstance(value, bool):
        return value
    if str(value) not in MSBG_MODES:
        raise ValueError(f"msbg_mode must be one of {list(MSBG_MODES)}, got {value!r}")
    return MSBG_MODES[str(value)]


def check_options(
    stage: str, shard_index: int, num_shards: int, wav_subtype: str, resampler: str = "kaiser_best"
) -> None:
    """Check the prepare_data options that have a fixed set of values.

    Raises
    ------
    ValueError
        Naming the option, the value received and the values allowed.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"need num_shards >= 1 and 0 <= shard_index < num_shards, got "
            f"shard_index={shard_index}, num_shards={num_shards}"
        )
    if wav_subtype not in WAV_SUBTYPES:
        raise ValueError(f"wav_subtype must be one of {WAV_SUBTYPES}, got {wav_subtype!r}")
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")


def check_ranges(**values: Any) -> None:
    """Check numeric settings against :data:`RANGES` (``name=value`` keyword arguments).

    Raises
    ------
    ValueError
        Naming the setting, its value and the range allowed.
    """
    for name, value in values.items():
        low, high = RANGES[name]
        if name == "trim_s" and isinstance(value, str):
            if value in TRIM_MODES:
                continue  # per dataset or per reference (e032.run_items)
            raise ValueError(
                f"trim_s must be a number in [{low}, {high}] or one of " f"{list(TRIM_MODES)}, got {value!r}"
            )
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


def load_track_records(paths: TrackPaths, root: Any = None) -> dict[str, list[dict]]:
    """Check the dataset and output folders, then read and check both response lists (IDs
    included) and their listeners.

    Returns
    -------
    ``{"train": records, "test": records}`` in JSON order.
    """
    check_dataset_folders(paths, root)
    check_output_folders(paths)
    records = {}
    for split in SPLITS:
        records[split] = load_records(paths.responses_json(split))
        check_record_ids(records[split], paths.responses_json(split))
        check_listeners(records[split], paths.responses_json(split), paths.listeners_json(split))
    return records


def shard(values: Iterable[T], shard_index: int, num_shards: int) -> list[T]:
    """Every ``num_shards``-th value of the sorted ``values``, from ``shard_index``.

    Examples
    --------
    >>> shard(["d", "a", "c", "b", "e"], 1, 2)
    ['b', 'd']
    """
    return sorted(values)[shard_index::num_shards]


def shard_items(items: Sequence[SignalItem], shard_index: int, num_shards: int) -> list[SignalItem]:
    """The signals of one shard (sorted by split and CSV ID, then ``[shard_index::N]``)."""
    by_key = {(item.split, item.id): item for item in items}
    return [by_key[key] for key in shard(by_key, shard_index, num_shards)]


def reference_items(
    items: Sequence[SignalItem], shard_index: int = 0, num_shards: int = 1
) -> list[SignalItem]:
    """One item per 16 kHz reference ``(split, reference name)`` of ``items``, sharded like the
    signals (sorted by that key, then ``[shard_index::N]``).

    The name is the scene for CPC1, ``<subset>_<scene>`` (or ``<subset>_<signal>``) otherwise.
    """
    first: dict[tuple[str, str], SignalItem] = {}
    for item in items:
        first.setdefault((item.split, item.ref_name), item)
    return [first[key] for key in shard(first, shard_index, num_shards)]


def check_audio_inputs(
    run: Any,
    items: Sequence[SignalItem],
    references: Sequence[SignalItem],
    length_tolerance_s: float,
) -> None:
    """Check the headers of the HA outputs of ``items``, of their references and of those of
    ``references``, and each HA output's length against its reference (:mod:`e032.cpc1_inputs`).

    Files are checked in groups of equal sample rate and trim, HA outputs before references.
    """
    inputs = [run.inputs(item) for item in items]
    ref_inputs = [run.inputs(item) for item in references]
    groups: dict[tuple[int, float], tuple[list[Path], set[Path]]] = {}
    for inp in inputs:
        group = groups.setdefault((inp.sample_rate, inp.trim_s), ([], set()))
        group[0].append(inp.ha_wav)
        group[1].add(inp.ref_wav)
    for inp in ref_inputs:
        groups.setdefault((inp.sample_rate, inp.trim_s), ([], set()))[1].add(inp.ref_wav)
    for (sample_rate, trim_s), (ha_files, ref_files) in groups.items():
        check_wav_headers(ha_files + sorted(ref_files), sample_rate, n_channels=2, trim_s=trim_s)
    for sample_rate in sorted({inp.sample_rate for inp in inputs}):
        check_lengths(
            [(inp.ha_wav, inp.ref_wav) for inp in inputs if inp.sample_rate == sample_rate],
            sample_rate,
            length_tolerance_s,
        )


def msbg_units(run: Any, items: Sequence[SignalItem], settings: dict[str, Any]) -> list[Unit]:
    """One record unit per signal: 44.1 kHz HA output -> MSBG output, with its audiograms.

    The unit's ``job`` is the ``msbg.batch.MsbgJob``; its parameters are the audiograms and a
    digest of ``settings`` (the MSBGEar settings), so a fixed audiogram redoes that listener's
    signals.
    """
    from msbg.batch import MsbgJob

    settings_id = settings_digest(settings)
    units = []
    for item in items:
        inp = run.inputs(item)
        job = MsbgJob(inp.msbg_input, inp.msbg_wav, inp.audiogram_left, inp.audiogram_right)
        params = {
            "settings": settings_id,
            "left": _audiogram_params(job.audiogram_left),
            "right": _audiogram_params(job.audiogram_right),
        }
        units.append(Unit(job.output_wav.name, (job.input_wav,), params, (job.output_wav,), job))
    return units


def _audiogram_params(audiogram) -> dict[str, list[float]]:
    return {"levels": audiogram.levels.tolist(), "frequencies": audiogram.frequencies.tolist()}


def msbg_input_units(run: Any, items: Sequence[SignalItem], resampler: str) -> list[Unit]:
    """One record unit per HA output not at 44.1 kHz: its resampled copy, MSBG's input.

    The unit's ``job`` is a :class:`ResampleJob`.
    """
    units = []
    for item in items:
        inp = run.inputs(item)
        if inp.msbg_input == inp.ha_wav:
            continue
        params = {
            "resampler": RESAMPLER_STAMPS[resampler],
            "sample_rate_in": inp.sample_rate,
            "sample_rate_out": MSBG_SAMPLE_RATE,
        }
        job = ResampleJob(inp.ha_wav, inp.msbg_input, inp.sample_rate, resampler)
        units.append(Unit(inp.msbg_input.name, (inp.ha_wav,), params, (inp.msbg_input,), job))
    return units


@dataclass(frozen=True)
class ResampleJob:
    """A 2-channel HA output to resample to MSBG's 44.1 kHz (float WAV)."""

    source: Path
    output: Path
    sample_rate_in: int
    resampler: str


def run_resample_job(job: ResampleJob) -> bool:
    """Resample one HA output to 44.1 kHz and write it atomically (32-bit float)."""
    signal = read_wav(job.source, sample_rate=job.sample_rate_in, n_channels=2)
    write_wav_atomic(
        job.output,
        resample(signal, job.sample_rate_in, MSBG_SAMPLE_RATE, job.resampler),
        MSBG_SAMPLE_RATE,
        subtype="FLOAT",
    )
    return True


def mono_split_units(
    run: Any,
    items: Sequence[SignalItem],
    references: Sequence[SignalItem],
    stamp: dict[str, Any],
    base: MonoSplitSettings,
    msbg_on: bool = True,
) -> tuple[list[Unit], dict[Path, MonoSplitSettings]]:
    """16 kHz record units: one per processed signal of ``items``, one per reference.

    The processed source is the MSBG output (44.1 kHz), or with ``msbg_on`` false the HA output
    itself. Each unit's ``job`` is a :class:`MonoSplitJob`; its key is the left file's path
    relative to the ASR data folder; its parameters are a digest of the 16 kHz ``stamp``, plus
    the input rate and trim where they differ from ``base`` (CPC2/CPC3, trim_s=onset).

    Returns
    -------
    units, and the settings of each job keyed by its left output file.
    """
    paths = run.paths
    jobs: list[tuple[MonoSplitJob, int, float]] = []
    for item in items:
        inp = run.inputs(item)
        left, right = (item_wav(paths, item, ear, "msbg") for ear in EARS)
        source, rate = (inp.msbg_wav, MSBG_SAMPLE_RATE) if msbg_on else (inp.ha_wav, inp.sample_rate)
        jobs.append((MonoSplitJob(source, left, right), rate, inp.trim_s))
    for item in references:
        inp = run.inputs(item)
        left, right = (item_wav(paths, item, ear, "ref") for ear in EARS)
        jobs.append((MonoSplitJob(inp.ref_wav, left, right), inp.sample_rate, inp.trim_s))
    digest = settings_digest(stamp)
    units, settings = [], {}
    for job, rate, trim_s in jobs:
        params: dict[str, Any] = {"settings": digest}
        if (rate, trim_s) != (base.sample_rate_in, base.trim_s):
            params |= {"sample_rate_in": rate, "trim_s": trim_s}
        settings[job.left] = replace(base, sample_rate_in=rate, trim_s=trim_s)
        units.append(
            Unit(
                str(job.left.relative_to(paths.asr_data_dir)),
                (job.source,),
                params,
                (job.left, job.right),
                job,
            )
        )
    return units, settings


def run_mono_split_jobs(
    jobs: Sequence[MonoSplitJob],
    settings: MonoSplitSettings | Mapping[Path, MonoSplitSettings],
    num_workers: int = 0,
    on_done: Callable[[MonoSplitJob, bool], Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[int, int]:
    """Run the 16 kHz jobs on ``num_workers`` processes (0 = all cores; 1 = in this process).

    ``settings`` are shared, or given per job (keyed by the job's left output file).
    ``on_done(job, wrote)`` is called in this process after each job; ``progress(n_done, n_total)``
    too (:func:`msbg.parallel.run_pool`).

    Returns
    -------
    n_written, n_skipped : jobs written now and jobs already done.
    """
    per_job = settings if isinstance(settings, Mapping) else {job.left: settings for job in jobs}
    results = _run_jobs(
        [(run_mono_split, job, per_job[job.left]) for job in jobs], num_workers, on_done, progress
    )
    n_written = sum(results)
    return n_written, len(results) - n_written


def run_resample_jobs(
    jobs: Sequence[ResampleJob],
    num_workers: int = 0,
    on_done: Callable[[ResampleJob, bool], Any] | None = None,
) -> None:
    """Resample HA outputs to 44.1 kHz on ``num_workers`` processes (as the 16 kHz jobs)."""
    _run_jobs([(run_resample_job, job) for job in jobs], num_workers, on_done, None)


def _apply(call: tuple) -> Any:
    """``function(job, *args)`` of a ``(function, job, *args)`` tuple: one picklable pool job."""
    function, *args = call
    return function(*args)


def _run_jobs(
    calls: Sequence[tuple],
    num_workers: int,
    on_done: Callable[..., Any] | None,
    progress: Callable[[int, int], Any] | None,
) -> list:
    """Run ``(function, job, *args)`` calls with msbg's pool runner; ``on_done(job, result)``."""
    done = on_done if on_done is not None else (lambda job, result: None)
    # forkserver: no fork of a parent that may hold threads (BLAS pools, torch)
    return run_pool(
        _apply,
        calls,
        num_workers,
        on_result=lambda call, result: done(call[1], result),
        progress=progress,
        start_method="forkserver",
    )


def count_clipped(path: Path) -> tuple[int, int]:
    """Samples of a 16-bit PCM file at full scale (clipped when written), and all samples."""
    samples, _ = sf.read(str(path), dtype="int16")
    return int(np.count_nonzero((samples == 32767) | (samples == -32768))), int(samples.size)


class ClippingCount:
    """Counts the clipped samples of the 16-bit files written; warns about loud clipping.

    A file with more than ``warn_fraction`` of its samples clipped is named in a warning (an
    input far too loud, e.g. a wrong scale, becomes a square wave); every clipped file counts
    in :meth:`summary`. The faithful 16-bit format clips the few MSBG peaks above 1 of normal
    CPC1 signals, so a small count is expected.
    """

    def __init__(self, warn_fraction: float = CLIP_WARN_FRACTION) -> None:
        self.warn_fraction = warn_fraction
        self.n_files = 0
        self.n_samples = 0

    def add(self, *files: Path) -> None:
        """Count the clipped samples of ``files`` (just written)."""
        for path in files:
            n_clipped, n_total = count_clipped(path)
            if n_clipped:
                self.n_files += 1
                self.n_samples += n_clipped
            if n_clipped > self.warn_fraction * n_total:
                logger.warning(
                    "%s: %d of %d samples (%.1f %%) clipped to 16-bit full scale: is "
                    "its source far too loud? (wav_subtype=FLOAT keeps the peaks)",
                    path,
                    n_clipped,
                    n_total,
                    100 * n_clipped / n_total,
                )

    def summary(self) -> str:
        """``", N files with M clipped samples"`` or ``""``."""
        if not self.n_files:
            return ""
        return f", {self.n_files} file(s) with {self.n_samples} clipped sample(s)"


def redo_mono_split_units(
    todo: Sequence[Unit],
    settings: MonoSplitSettings | Mapping[Path, MonoSplitSettings],
    record: RecordSet,
    num_workers: int = 0,
    progress: bool = False,
) -> ClippingCount:
    """Redo stale 16 kHz units: delete their outputs (so that they are not skipped), write them
    again, record each, and count the clipped samples of 16-bit files.

    Returns
    -------
    The clipping count of the files written.
    """
    for unit in todo:
        for path in unit.outputs:
            Path(path).unlink(missing_ok=True)
    by_left = {unit.job.left: unit for unit in todo}
    subtype = (
        next(iter(settings.values())).subtype
        if isinstance(settings, Mapping) and settings
        else getattr(settings, "subtype", "")
    )
    clipping = ClippingCount()

    def on_done(job: MonoSplitJob, wrote: bool) -> None:
        record.done(by_left[job.left])
        if subtype.startswith("PCM"):
            clipping.add(job.left, job.right)

    run_mono_split_jobs(
        [unit.job for unit in todo],
        settings,
        num_workers,
        on_done=on_done,
        progress=TextProgress("16 kHz", unit="files") if progress else None,
    )
    return clipping


def remove_stale_temp_files(folders: Iterable[Path]) -> int:
    """Delete temporary files that a killed run left behind (``.<name>.*.tmp*``).

    Call it only when no other job writes into ``folders`` (not while shards run).
    """
    n_removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith(".") and ".tmp" in entry.name and entry.is_file():
                entry.unlink()
                n_removed += 1
    if n_removed:
        logger.info("removed %d temporary file(s) left by an interrupted run", n_removed)
    return n_removed


def output_folders(run: Any, items: Sequence[SignalItem]) -> list[Path]:
    """Every folder this run's prepare_data writes audio or CSVs into."""
    paths = run.paths
    splits = sorted({item.split for item in items})
    folders = sorted({run.inputs(item).msbg_wav.parent for item in items})
    folders += [paths.asr_data_dir, paths.split_list("train").parent]
    folders += [
        paths.asr_wav(split, ear, kind, "x").parent for split in splits for ear in EARS for kind in KINDS
    ]
    return folders
