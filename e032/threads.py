"""Thread pinning and worker counts for worker processes: re-exported from :mod:`msbg.parallel`.

On a small machine, BLAS (numpy/scipy) and torch intra-op thread pools oversubscribe the cores as
soon as several processes run at once: small matrix products then cost 10x more. Worker processes
call :func:`pin_threads` first, and the work is parallelised across files instead. The one pool
runner of the project is :func:`msbg.parallel.run_pool`.
"""

from __future__ import annotations

from msbg.parallel import (
    THREAD_ENV_VARS,
    default_num_workers,
    exit_with_parent,
    init_pool_worker,
    pin_threads,
    run_pool,
)

__all__ = [
    "THREAD_ENV_VARS",
    "default_num_workers",
    "exit_with_parent",
    "init_pool_worker",
    "pin_threads",
    "run_pool",
]
