"""Run independent jobs on a pool of worker processes, one BLAS/torch thread per worker.

On a small machine the thread pools of BLAS (numpy/scipy) and torch oversubscribe the cores as
soon as several processes run at once, and small matrix products then cost ~10x more. So the
work is parallelised across jobs (files) instead: every worker of :func:`run_pool` pins its
thread pools to one thread (:func:`pin_threads`) and exits when the process that started it dies
(:func:`exit_with_parent`), so that a killed run leaves no orphans behind.

:func:`run_pool` reports through callbacks only (``on_result`` per job, ``progress`` with the
counts); :class:`TextProgress` is one such callback for command lines and log files.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TextIO, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
StartMethod = Literal["spawn", "forkserver"]

#: Environment variables that size the thread pools of BLAS/OpenMP libraries loaded later.
THREAD_ENV_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
#: How often (s) a worker outside multiprocessing checks whether its parent still lives.
PARENT_POLL_S = 1.0
#: Non-terminal progress output: one line per this fraction of the jobs (10 lines in all).
LOG_PROGRESS_STEP = 0.1
#: Terminal progress output: redraw the line at most this often (s).
TTY_REDRAW_S = 0.2


def pin_threads(n_threads: int = 1) -> None:
    """Limit the BLAS, OpenMP and torch thread pools of this process to ``n_threads``.

    Sets the usual environment variables (read by libraries loaded later and inherited by child
    processes), limits BLAS libraries already loaded (threadpoolctl, when installed) and sets
    torch's intra-op threads when torch is already imported. Meant for worker processes: it
    changes the process for good (use ``threadpoolctl.threadpool_limits`` for a block).

    Parameters
    ----------
    n_threads : int
        Threads per pool, >= 1.

    Raises
    ------
    ValueError
        If ``n_threads`` < 1.
    """
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(int(n_threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it only libraries loaded later are limited
        pass
    else:
        threadpool_limits(int(n_threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n_threads))


def exit_with_parent(poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """Make this worker process exit when the process that started it dies.

    A pool worker waits for jobs on a pipe that it holds open itself, so it would otherwise
    wait for ever once its parent is killed. A daemon thread waits on the parent's sentinel
    (``multiprocessing.parent_process()``; for a forkserver worker that is the process that
    asked for it, not the fork server) or, outside multiprocessing, polls the parent's process
    ID every ``poll_s`` seconds, and ends the process (``os._exit(1)``) when the parent is gone.

    Returns
    -------
    threading.Thread
        The (started, daemon) watching thread.
    """
    parent = multiprocessing.parent_process()
    parent_pid = os.getppid()

    def watch() -> None:
        if parent is not None:
            multiprocessing.connection.wait([parent.sentinel])
        else:
            while os.getppid() == parent_pid:
                time.sleep(poll_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def init_pool_worker(initializer: Callable[..., Any] | None = None, initargs: Sequence[Any] = ()) -> None:
    """Start-up of a pool worker: one thread per pool, exit with the parent, then ``initializer``.

    Usable as the ``initializer`` of any ``concurrent.futures.ProcessPoolExecutor`` (with
    ``functools.partial`` to pass a job-specific ``initializer(*initargs)``).
    """
    pin_threads(1)
    exit_with_parent()
    if initializer is not None:
        initializer(*initargs)


def default_num_workers(requested: int | None = None) -> int:
    """Number of worker processes: ``requested`` if > 0, else the number of usable cores.

    Raises
    ------
    ValueError
        If ``requested`` < 0.

    Examples
    --------
    >>> default_num_workers(3)
    3
    """
    if requested:
        if requested < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = all cores), got {requested}")
        return int(requested)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_chunk(func: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Any]:
    """Worker side of :func:`run_pool`: ``func`` on each item of ``chunk``, in order."""
    return [func(item) for item in chunk]


def run_pool(
    func: Callable[[Item], Result],
    items: Iterable[Item],
    num_workers: int = 0,
    *,
    initializer: Callable[..., Any] | None = None,
    initargs: Sequence[Any] = (),
    on_result: Callable[[Item, Result], Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    start_method: StartMethod = "spawn",
    chunksize: int = 1,
) -> list[Result]:
    """Run ``func`` on every item, on ``num_workers`` processes; return the results in order.

    Workers are started with ``start_method`` (``"spawn"`` or ``"forkserver"``: never a fork
    of a parent that may hold threads), run :func:`init_pool_worker` (one BLAS/torch thread,
    exit with the parent) and then ``initializer(*initargs)``. With one worker (or at most one
    item) everything runs in this process, with BLAS limited to one thread for the duration
    only and ``initializer(*initargs)`` called once here. Jobs must be independent: their
    results do not depend on the number of workers.

    Parameters
    ----------
    func : callable
        ``func(item) -> result``; with more than one worker it and the items must be picklable
        (a module-level function).
    items : iterable
        The jobs.
    num_workers : int
        Worker processes; 0 = all usable cores (:func:`default_num_workers`), >= 0.
    initializer, initargs : callable, sequence, optional
        Per-process set-up (e.g. building a model held in a module global).
    on_result : callable, optional
        ``on_result(item, result)``, called in this process as each job finishes (in completion
        order, not item order), e.g. to record finished outputs.
    progress : callable, optional
        ``progress(n_done, n_total)``, called in this process once with ``n_done = 0`` and
        after each finished job (see :class:`TextProgress`).
    start_method : {"spawn", "forkserver"}
    chunksize : int
        Items sent to a worker at once (> 1 for many short jobs); callbacks then come per chunk.

    Returns
    -------
    list
        ``[func(item) for item in items]``.

    Raises
    ------
    ValueError
        For a bad ``num_workers``, ``chunksize`` or ``start_method``.
    Exception
        The first exception a job raised; the jobs not yet started are cancelled (finished ones
        keep their effects), and the pool is shut down before it propagates.
    """
    items = list(items)
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
    if int(chunksize) < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    n_workers = min(default_num_workers(num_workers), max(len(items), 1))
    report = progress if progress is not None else (lambda n_done, n_total: None)
    done = on_result if on_result is not None else (lambda item, result: None)
    report(0, len(items))
    if n_workers <= 1:
        return _run_here(func, items, initializer, initargs, done, report)
    chunks = [items[i : i + chunksize] for i in range(0, len(items), chunksize)]
    results: list[Any] = [None] * len(items)
    n_done = 0
    context = multiprocessing.get_context(start_method)
    with concurrent.futures.ProcessPoolExecutor(
        n_workers,
        mp_context=context,
        initializer=init_pool_worker,
        initargs=(initializer, tuple(initargs)),
    ) as pool:
        futures = {
            pool.submit(_run_chunk, func, chunk): index * chunksize for index, chunk in enumerate(chunks)
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                start = futures[future]
                for offset, result in enumerate(future.result()):
                    results[start + offset] = result
                    done(items[start + offset], result)
                n_done += len(chunks[start // chunksize])
                report(n_done, len(items))
        except BaseException:  # a failed job or Ctrl-C: drop the queue, keep finished outputs
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _run_here(
    func: Callable[[Any], Any],
    items: list[Any],
    initializer: Callable[..., Any] | None,
    initargs: Sequence[Any],
    done: Callable[[Any, Any], Any],
    report: Callable[[int, int], Any],
) -> list[Any]:
    """The one-worker case of :func:`run_pool`, in this process."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency
        import contextlib

        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)
    results = []
    with limits:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            results.append(func(item))
            done(item, results[-1])
            report(len(results), len(items))
    return results


class TextProgress:
    """A ``progress(n_done, n_total)`` callback that writes progress as text.

    On a terminal it redraws one line (``label: 12/50 files, 0:42 elapsed, ~2:55 left``); on a
    file or pipe (a log) it writes a line at each tenth of the jobs and at the end, so that a
    log file gets ~10 lines, not hundreds.

    Parameters
    ----------
    label : str
        What is counted, e.g. ``"MSBG"``.
    stream : text stream, optional
        Default: ``sys.stderr``.
    unit : str
        Name of one job in the line.
    """

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "files") -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._last_step = 0
        self._last_draw = -float("inf")

    def __call__(self, n_done: int, n_total: int) -> None:
        """Report that ``n_done`` of ``n_total`` jobs are finished (0: the run starts)."""
        now = time.monotonic()
        if n_done == 0:
            self._start, self._last_step = now, 0
            return
        if n_total <= 0:
            return
        line = self._line(n_done, n_total, now - self._start)
        if self.is_tty:
            if n_done < n_total and now - self._last_draw < TTY_REDRAW_S:
                return
            self._last_draw = now
            self.stream.write(f"\r{line}" + ("\n" if n_done >= n_total else ""))
        else:
            step = int(n_done / n_total / LOG_PROGRESS_STEP + 1e-9)
            if step <= self._last_step and n_done < n_total:
                return
            self._last_step = step
            self.stream.write(line + "\n")
        self.stream.flush()

    def _line(self, n_done: int, n_total: int, elapsed_s: float) -> str:
        text = f"{self.label}: {n_done}/{n_total} {self.unit}, {_clock(elapsed_s)} elapsed"
        if 0 < n_done < n_total:
            text += f", ~{_clock(elapsed_s * (n_total - n_done) / n_done)} left"
        return text


def _clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


__all__ = [
    "TextProgress",
    "default_num_workers",
    "exit_with_parent",
    "init_pool_worker",
    "pin_threads",
    "run_pool",
]
