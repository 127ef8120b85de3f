"""Progress display that suits both a terminal and a log file.

On a terminal, a tqdm bar. When the stream is not a terminal (``make demo > log``, Slurm, CI), a
tqdm bar would write hundreds of carriage-return updates into the file; instead
:class:`LogProgress` writes one line per tenth of the work (and one at the end): at most
``LOG_LINES + 1`` lines, each readable on its own.
"""

from __future__ import annotations

import sys
import time
from typing import IO

LOG_LINES = 10  # lines a non-terminal progress display writes (one per tenth), plus the last


class LogProgress:
    """A few plain lines of progress: ``desc: 63/630 file (10 %), 12 s, about 108 s left``.

    Offers the part of tqdm's interface the project uses (``update``, ``close``, context manager).

    >>> import io
    >>> out = io.StringIO()
    >>> with LogProgress(total=20, desc="MSBG", unit="file", stream=out, clock=lambda: 0.0) as bar:
    ...     for _ in range(20):
    ...         bar.update()
    >>> lines = out.getvalue().splitlines()
    >>> len(lines), lines[-1]
    (10, 'MSBG: 20/20 file (100 %), 0 s')
    """

    def __init__(self, total: int, desc: str, unit: str = "item", stream: IO[str] | None = None,
                 clock=time.monotonic) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.stream = sys.stderr if stream is None else stream
        self.clock = clock
        self.start = clock()
        self.n = 0
        self.next_tenth = 1
        self.closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; write a line when a further tenth of ``total`` is reached."""
        self.n += n
        if self.total <= 0:
            return
        reached = self.n * LOG_LINES // self.total
        if reached >= self.next_tenth and self.n < self.total:
            self.next_tenth = reached + 1
            self._write()

    def close(self) -> None:
        """Write the final line (once), if anything was to be done."""
        if not self.closed and self.total > 0:
            self._write()
        self.closed = True

    def _write(self) -> None:
        elapsed_s = self.clock() - self.start
        line = (f"{self.desc}: {self.n}/{self.total} {self.unit} "
                f"({100 * self.n // max(self.total, 1)} %), {elapsed_s:.0f} s")
        if 0 < self.n < self.total:
            line += f", about {elapsed_s * (self.total - self.n) / self.n:.0f} s left"
        print(line, file=self.stream, flush=True)

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    """Progress display that shows nothing (``progress: false``)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int, desc: str, unit: str = "item", enabled: bool = True,
                 stream: IO[str] | None = None):
    """A progress display for ``total`` units: tqdm on a terminal, :class:`LogProgress` otherwise.

    Parameters
    ----------
    total
        Number of units of work.
    desc, unit
        Label and unit name shown.
    enabled
        ``False``: show nothing (the recipe's ``progress: false``).
    stream
        Where to write; default ``sys.stderr``.
    """
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return _Silent()
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream)
    return LogProgress(total, desc, unit, stream)
