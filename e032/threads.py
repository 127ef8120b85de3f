"""Thread pinning for worker processes.

On a small machine, BLAS (numpy/scipy) and torch intra-op thread pools oversubscribe the cores as soon
as several processes run at once: small matrix products then cost 10x more. Worker processes call
:func:`pin_threads` first, and the work is parallelised across files instead.
"""

from __future__ import annotations

import os
import sys

_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def pin_threads(n_threads: int = 1) -> None:
    """Limit BLAS and torch thread pools of this process to ``n_threads``.

    Sets the usual environment variables (honoured by libraries loaded later, and inherited by
    child processes), limits already-loaded BLAS libraries through threadpoolctl, and sets torch's
    intra-op threads when torch is already imported.
    """
    for var in _THREAD_ENV_VARS:
        os.environ[var] = str(n_threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n_threads)
    except ImportError:  # threadpoolctl is a pinned dependency; tolerate its absence in odd envs
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n_threads)


def init_pool_worker() -> None:
    """Start-up of a pool worker: one BLAS/torch thread, and exit when the parent process dies."""
    from msbg.batch import exit_with_parent

    pin_threads(1)
    exit_with_parent()


def default_num_workers(requested: int | None = None) -> int:
    """Number of worker processes: ``requested`` if > 0, else the number of usable cores."""
    if requested:
        if requested < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = all cores), got {requested}")
        return int(requested)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
