"""Stages of ``prepare_data.py``: inputs, shards, MSBG units, 16 kHz units (notes §2).

The script wires these together; each function does one job. Outputs of every stage are written
atomically, and skipped only while the stage record (:mod:`e032.records`) says that their inputs
and parameters are unchanged, so any stage can be killed and re-run, and N cluster jobs can share
the work through :func:`shard` (each takes every N-th signal of a sorted list).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import soundfile as sf
from tqdm import tqdm

from e032.cpc1_inputs import (
    check_dataset_folders,
    check_lengths,
    check_listeners,
    check_output_folders,
    check_wav_headers,
    load_records,
)
from e032.ids import check_record_ids
from e032.manifests import EARS, KINDS, SignalItem, item_wav
from e032.records import RecordSet, Unit, settings_digest
from e032.resample import RESAMPLERS, MonoSplitJob, MonoSplitSettings, run_mono_split
from e032.threads import default_num_workers, init_pool_worker
from e032.tracks import TrackPaths

logger = logging.getLogger(__name__)

SPLITS: tuple[Literal["train", "test"], ...] = ("train", "test")
STAGES = ("all", "split", "msbg", "resample", "merge")
WAV_SUBTYPES = ("PCM_16", "FLOAT")
RANGES: dict[str, tuple[float, float]] = {  # numeric settings of prepare_data: [low, high]
    "trim_s": (0.0, 60.0), "target_sample_rate": (8000, 48000), "dev_percent": (0.0, 1.0),
    "input_length_tolerance_s": (0.0, 10.0),
}
CLIP_WARN_FRACTION = 0.01  # warn about a 16-bit file with more than 1 % of its samples clipped
T = TypeVar("T")


def check_options(stage: str, shard_index: int, num_shards: int, wav_subtype: str,
                  resampler: str = "kaiser_best") -> None:
    """Check the prepare_data options that have a fixed set of values.

    Raises
    ------
    ValueError
        Naming the option, the value received and the values allowed.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got "
                         f"shard_index={shard_index}, num_shards={num_shards}")
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
    """The signals of one shard (sorted by archive and signal ID, then ``[shard_index::N]``)."""
    by_key = {(item.split, item.signal): item for item in items}
    return [by_key[key] for key in shard(by_key, shard_index, num_shards)]


def reference_scenes(
    items: Sequence[SignalItem], shard_index: int = 0, num_shards: int = 1
) -> list[tuple[str, str]]:
    """The ``(split, scene)`` references of ``items``, sharded like the signals."""
    return shard({(item.split, item.scene) for item in items}, shard_index, num_shards)


def check_audio_inputs(
    paths: TrackPaths, items: Sequence[SignalItem], scenes: Sequence[tuple[str, str]],
    sample_rate: int, trim_s: float, length_tolerance_s: float,
) -> None:
    """Check the headers of the HA outputs of ``items`` and of the references of ``scenes``
    and of the items' scenes, and each HA output's length against its scene reference."""
    pairs = [(paths.ha_output_wav(item.split, item.signal), paths.target_wav(item.split, item.scene))
             for item in items]
    references = {paths.target_wav(split, scene) for split, scene in scenes}
    references |= {reference for _, reference in pairs}
    files = [ha for ha, _ in pairs] + sorted(references)
    check_wav_headers(files, sample_rate, n_channels=2, trim_s=trim_s)
    check_lengths(pairs, sample_rate, length_tolerance_s)


def msbg_units(paths: TrackPaths, items: Sequence[SignalItem], listeners: dict[str, dict],
               settings: dict[str, Any]) -> list[Unit]:
    """One record unit per signal: HA output -> MSBG output, with that listener's audiograms.

    ``listeners`` maps split to the ``Listener.load_listener_dict`` of its listener file; the
    unit's ``job`` is the ``msbg.batch.MsbgJob``; its parameters are the audiograms and a digest
    of ``settings`` (the MSBGEar settings), so a fixed audiogram redoes that listener's signals.
    """
    from msbg.batch import MsbgJob

    settings_id = settings_digest(settings)
    units = []
    for item in items:
        listener = listeners[item.split][item.listener]
        job = MsbgJob(paths.ha_output_wav(item.split, item.signal),
                      paths.msbg_wav(item.split, item.signal),
                      listener.audiogram_left, listener.audiogram_right)
        params = {"settings": settings_id, "left": _audiogram_params(job.audiogram_left),
                  "right": _audiogram_params(job.audiogram_right)}
        units.append(Unit(job.output_wav.name, (job.input_wav,), params, (job.output_wav,), job))
    return units


def _audiogram_params(audiogram) -> dict[str, list[float]]:
    return {"levels": audiogram.levels.tolist(), "frequencies": audiogram.frequencies.tolist()}


def load_listeners(paths: TrackPaths, items: Sequence[SignalItem]) -> dict[str, dict]:
    """``{split: {listener ID: msbg.Listener}}`` for the splits that ``items`` use."""
    from msbg import Listener

    splits = sorted({item.split for item in items})
    return {split: Listener.load_listener_dict(paths.listeners_json(split)) for split in splits}


def mono_split_units(
    paths: TrackPaths, items: Sequence[SignalItem], scenes: Sequence[tuple[str, str]],
    settings: dict[str, Any],
) -> list[Unit]:
    """16 kHz record units: one per MSBG output of ``items``, one per reference of ``scenes``.

    Each unit's ``job`` is a :class:`MonoSplitJob`; its key is the left file's path relative to
    the ASR data folder; its parameters are a digest of the 16 kHz ``settings``.
    """
    jobs = []
    for item in items:
        left, right = (item_wav(paths, item, ear, "msbg") for ear in EARS)
        jobs.append(MonoSplitJob(paths.msbg_wav(item.split, item.signal), left, right))
    for split, scene in scenes:
        left, right = (paths.asr_wav(split, ear, "ref", scene) for ear in EARS)
        jobs.append(MonoSplitJob(paths.target_wav(split, scene), left, right))
    params = {"settings": settings_digest(settings)}
    return [Unit(str(job.left.relative_to(paths.asr_data_dir)), (job.source,), params,
                 (job.left, job.right), job) for job in jobs]


def run_mono_split_jobs(
    jobs: Sequence[MonoSplitJob], settings: MonoSplitSettings, num_workers: int = 0,
    on_done: Callable[[MonoSplitJob, bool], Any] | None = None,
) -> tuple[int, int]:
    """Run the 16 kHz jobs on ``num_workers`` processes (0 = all cores; 1 = in this process).

    ``on_done(job, wrote)`` is called in this process after each job.

    Returns
    -------
    n_written, n_skipped : jobs written now and jobs already done.
    """
    n_workers = min(default_num_workers(num_workers), max(len(jobs), 1))
    done = on_done if on_done is not None else (lambda job, wrote: None)
    if n_workers == 1:
        results = []
        for job in jobs:
            results.append(run_mono_split(job, settings))
            done(job, results[-1])
    else:
        results = _run_in_pool(jobs, settings, n_workers, done)
    n_written = sum(results)
    return n_written, len(results) - n_written


def _run_in_pool(jobs, settings, n_workers: int, done: Callable[..., Any]) -> list[bool]:
    # forkserver: no fork of a parent that may hold threads (tqdm's monitor, BLAS pools)
    context = get_context("forkserver")
    results = []
    with ProcessPoolExecutor(n_workers, mp_context=context, initializer=init_pool_worker) as pool:
        futures = {pool.submit(run_mono_split, job, settings): job for job in jobs}
        try:
            for future in as_completed(futures):
                results.append(future.result())
                done(futures[future], results[-1])
        except BaseException:  # Ctrl-C or a failed job: drop the queue, keep finished files
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


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
                logger.warning("%s: %d of %d samples (%.1f %%) clipped to 16-bit full scale: is "
                               "its source far too loud? (wav_subtype=FLOAT keeps the peaks)",
                               path, n_clipped, n_total, 100 * n_clipped / n_total)

    def summary(self) -> str:
        """``", N files with M clipped samples"`` or ``""``."""
        if not self.n_files:
            return ""
        return f", {self.n_files} file(s) with {self.n_samples} clipped sample(s)"


def redo_mono_split_units(
    todo: Sequence[Unit], settings: MonoSplitSettings, record: RecordSet, num_workers: int = 0,
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
    clipping = ClippingCount()
    with tqdm(total=len(todo), desc="16 kHz", unit="file", disable=not progress) as bar:

        def on_done(job: MonoSplitJob, wrote: bool) -> None:
            record.done(by_left[job.left])
            if settings.subtype.startswith("PCM"):
                clipping.add(job.left, job.right)
            bar.update()

        run_mono_split_jobs([unit.job for unit in todo], settings, num_workers, on_done=on_done)
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


def output_folders(paths: TrackPaths) -> list[Path]:
    """Every folder this track's prepare_data writes audio or CSVs into."""
    folders = [paths.msbg_dir(split) for split in SPLITS] + [paths.asr_data_dir]
    folders.append(paths.split_list("train").parent)
    folders += [paths.asr_wav(split, ear, kind, "x").parent
                for split in SPLITS for ear in EARS for kind in KINDS]
    return folders

