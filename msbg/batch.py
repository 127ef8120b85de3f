"""Batch MSBG simulation of binaural WAV files, in parallel worker processes.

Each job reads a 2-channel 44.1 kHz WAV, runs :func:`msbg.listen` with the job's left and right
audiograms and writes a 2-channel 44.1 kHz 32-bit float WAV atomically. Jobs are independent, so
the outputs do not depend on the number of workers. The pool is :func:`msbg.parallel.run_pool`:
workers pin BLAS to one thread (on a small machine, parallelism across files beats threads inside
the small matrix products) and exit when the parent process dies.
"""

from __future__ import annotations

import csv
import errno
import inspect
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from msbg.audiogram import Audiogram, Listener, audiogram_from_levels
from msbg.ear import Ear, listen
from msbg.files import read_wav, write_wav_atomic
from msbg.parallel import TextProgress, default_num_workers, run_pool
from msbg.tables import CLARITY_AUDIOGRAM_HZ, MSBG_SAMPLE_RATE

logger = logging.getLogger(__name__)

#: The :class:`~msbg.ear.Ear` defaults (E032's ``MSBGEar``: ff, 44.1 kHz, 100 dB SPL, 20 dB), read
#: from its signature so that the defaults live in one place.
DEFAULT_EAR_PARAMS: dict[str, Any] = {
    name: parameter.default for name, parameter in inspect.signature(Ear).parameters.items()
}


@dataclass(frozen=True)
class MsbgJob:
    """One binaural file to simulate.

    Attributes
    ----------
    input_wav : Path
        2-channel 44.1 kHz WAV (column 0 = left ear).
    output_wav : Path
        Where the simulated 2-channel 44.1 kHz float WAV goes.
    audiogram_left, audiogram_right : Audiogram
    """

    input_wav: Path
    output_wav: Path
    audiogram_left: Audiogram
    audiogram_right: Audiogram


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_jobs` did: counts, wall time (s) and CPU time (s, all processes)."""

    n_processed: int
    n_skipped: int
    wall_s: float
    cpu_s: float


def process_job(job: MsbgJob, ear: Ear) -> float:
    """Simulate one job with ``ear`` and write its output; return the CPU time used (s).

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the input file (missing, wrong format, bad signal).
    """
    start = time.process_time()
    signal = read_wav(job.input_wav, sample_rate=MSBG_SAMPLE_RATE, n_channels=2)
    try:
        output = listen(ear, signal, job.audiogram_left, job.audiogram_right)
    except ValueError as err:
        raise ValueError(f"{job.input_wav}: {err}") from None
    write_wav_atomic(job.output_wav, output, MSBG_SAMPLE_RATE, subtype="FLOAT")
    return time.process_time() - start


def os_error_message(err: OSError) -> str:
    """One line for an error of the operating system: the file, the reason and what to do.

    Examples
    --------
    >>> os_error_message(PermissionError(errno.EROFS, "Read-only file system", "/data/x.wav"))
    '/data/x.wav: Read-only file system: make the folder writable or write the outputs elsewhere'
    """
    path = err.filename if err.filename is not None else "(unknown file)"
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            f"the disk is full ({_free_space(path)} free): free some space or write the outputs "
            "elsewhere; a re-run resumes where this one stopped"
        )
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make the folder writable or write the outputs elsewhere"
    elif err.errno == errno.ENOENT:
        fix = "the file or its folder is missing (deleted or unmounted during the run?)"
    else:
        fix = "check the disk and the path; a re-run resumes where this one stopped"
    return f"{path}: {reason}: {fix}"


def _free_space(path: str | os.PathLike) -> str:
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB"
    except OSError:
        return "unknown space"


# ---- worker processes ----------------------------------------------------------------------
#: The Ear of this process while :func:`run_jobs` runs (one per worker; kept between jobs, so
#: that its filter designs and work arrays are reused).
_WORKER_EAR: Ear | None = None


def _init_worker(ear_params: dict[str, Any]) -> None:
    global _WORKER_EAR
    _WORKER_EAR = Ear(**ear_params)


def _worker_run(job: MsbgJob) -> float:
    if _WORKER_EAR is None:
        raise RuntimeError("msbg.batch worker not initialised (_init_worker was not called)")
    return process_job(job, _WORKER_EAR)


def _check_jobs(jobs: Sequence[MsbgJob], skip_existing: bool) -> list[MsbgJob]:
    """Validate every job before any long work; return those still to do."""
    outputs: dict[Path, Path] = {}
    for job in jobs:
        if not isinstance(job, MsbgJob):
            raise ValueError(f"expected MsbgJob items, got {type(job).__name__}")
        out = Path(job.output_wav).resolve()
        if out in outputs:
            raise ValueError(f"two jobs write the same output {out}: {outputs[out]} and {job.input_wav}")
        if out == Path(job.input_wav).resolve():
            raise ValueError(f"job would overwrite its input {job.input_wav}")
        outputs[out] = Path(job.input_wav)
    todo = [job for job in jobs if not (skip_existing and Path(job.output_wav).is_file())]
    missing = [str(job.input_wav) for job in todo if not Path(job.input_wav).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"{len(missing)} MSBG input file(s) not found: {shown}")
    for job in todo:
        try:
            info = sf.info(str(job.input_wav))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise ValueError(f"cannot read audio file {job.input_wav}: {err}") from None
        if info.samplerate != MSBG_SAMPLE_RATE or info.channels != 2:
            raise ValueError(
                f"{job.input_wav}: {info.channels} channel(s) at {info.samplerate} Hz; MSBG "
                f"expects 2 channels at {MSBG_SAMPLE_RATE} Hz"
            )
    return todo


def run_jobs(
    jobs: Iterable[MsbgJob],
    ear_params: Mapping[str, Any] | None = None,
    num_workers: int = 0,
    progress: bool | Callable[[int, int], Any] = True,
    skip_existing: bool = True,
    on_done: Callable[[MsbgJob], Any] | None = None,
) -> RunSummary:
    """Run MSBG on many binaural files, in parallel (:func:`msbg.parallel.run_pool`).

    Parameters
    ----------
    jobs : iterable of MsbgJob
    ear_params : mapping, optional
        Keyword arguments of :class:`Ear` (default: E032's ff / 44100 / 100 / 20).
    num_workers : int
        Worker processes; 0 = all usable cores. With 1 (or one job) it runs in this process.
    progress : bool or callable
        True: write progress to stderr (:class:`msbg.parallel.TextProgress`: one redrawn line
        on a terminal, ~10 lines in a log); False: none; or a ``progress(n_done, n_total)``
        callback.
    skip_existing : bool
        Skip jobs whose output file already exists (outputs are written atomically, so an
        existing file is complete).
    on_done : callable, optional
        Called in this process with each job once its output is written.

    Returns
    -------
    RunSummary

    Raises
    ------
    FileNotFoundError, ValueError
        Before any processing, if an input is missing or not 2-channel 44.1 kHz, two jobs share
        an output, or ``ear_params`` are invalid; during processing, naming the failing file.
    """
    jobs = list(jobs)
    params = {**DEFAULT_EAR_PARAMS, **dict(ear_params or {})}
    Ear(**params)  # validates the parameters here, not in every worker
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    todo = _check_jobs(jobs, skip_existing)
    n_workers = min(default_num_workers(num_workers), max(len(todo), 1))
    logger.info(
        "MSBG: %d job(s), %d to do, %d skipped, %d worker(s)",
        len(jobs),
        len(todo),
        len(jobs) - len(todo),
        n_workers,
    )
    if callable(progress):
        report = progress
    else:
        report = TextProgress("MSBG") if progress else None
    done = on_done if on_done is not None else (lambda job: None)
    global _WORKER_EAR
    try:
        cpu_times = run_pool(
            _worker_run,
            todo,
            n_workers,
            initializer=_init_worker,
            initargs=(params,),
            on_result=lambda job, cpu_s: done(job),
            progress=report,
        )
    finally:
        _WORKER_EAR = None  # set here when the jobs ran in this process
    # In-process jobs are counted in this process's own CPU time already.
    worker_cpu_s = sum(cpu_times) if n_workers > 1 else 0.0
    summary = RunSummary(
        n_processed=len(todo),
        n_skipped=len(jobs) - len(todo),
        wall_s=time.perf_counter() - wall_start,
        cpu_s=time.process_time() - cpu_start + worker_cpu_s,
    )
    logger.info("MSBG done: %s", summary)
    return summary


# ---- job lists (CSV) ---------------------------------------------------------------------------
LEVEL_COLUMNS: tuple[str, ...] = tuple(
    f"{side}_{int(f)}" for side in ("left", "right") for f in CLARITY_AUDIOGRAM_HZ
)


def read_job_csv(path: str | os.PathLike, listeners_json: str | os.PathLike | None = None) -> list[MsbgJob]:
    """Read a job list: columns ``input``, ``output`` and either ``listener`` or 16 levels.

    The level columns are ``left_250 ... left_8000, right_250 ... right_8000`` (dB HL at the 8
    Clarity frequencies). With a ``listener`` column, ``listeners_json`` (a Clarity listener file)
    gives the audiograms. Relative paths are relative to the CSV's folder.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file, the row and the missing column, listener or bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"job list not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"job list {path} has no rows")
    columns = set(rows[0])
    for needed in ("input", "output"):
        if needed not in columns:
            raise ValueError(f"job list {path}: missing column {needed!r} (has {sorted(columns)})")
    by_listener = "listener" in columns
    if by_listener:
        if listeners_json is None:
            raise ValueError(f"job list {path} has a 'listener' column: give --listeners FILE")
        listeners = Listener.load_listener_dict(listeners_json)
    elif not set(LEVEL_COLUMNS) <= columns:
        missing = [c for c in LEVEL_COLUMNS if c not in columns]
        raise ValueError(
            f"job list {path}: needs a 'listener' column or the 16 level columns; missing {missing}"
        )
    jobs = []
    for row_number, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"job list {path}, line {row_number}"
        if by_listener:
            name = row["listener"]
            if name not in listeners:
                raise ValueError(f"{where}: listener {name!r} not in {listeners_json}")
            left, right = listeners[name].audiogram_left, listeners[name].audiogram_right
        else:
            try:
                levels = [float(row[c]) for c in LEVEL_COLUMNS]
                left = audiogram_from_levels(levels[:8])
                right = audiogram_from_levels(levels[8:])
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: bad audiogram: {err}") from None
        jobs.append(
            MsbgJob(
                input_wav=(path.parent / row["input"]).resolve(),
                output_wav=(path.parent / row["output"]).resolve(),
                audiogram_left=left,
                audiogram_right=right,
            )
        )
    return jobs
