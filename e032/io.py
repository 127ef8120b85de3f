"""Atomic file output and validated input.

Every output of the recipe is written to a temporary file in the destination folder and then
renamed over the destination (``os.replace`` is atomic on POSIX), so a killed run never leaves a
truncated file behind and a re-run can trust any file that exists.

The WAV and JSON readers, the WAV writer and :func:`atomic_path` are msbg's (:mod:`msbg.files`:
the simulator stands alone, the recipe builds on it); this module adds text, JSON and CSV output
and the OS-error messages of the scripts.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from msbg.files import atomic_path, read_json, read_wav, write_wav_atomic

__all__ = [
    "atomic_path",
    "read_json",
    "read_wav",
    "write_wav_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "write_csv_atomic",
    "explain_os_errors",
    "current_umask",
]


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (keys keep their insertion order)."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def write_csv_atomic(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV with ``header`` and ``rows`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def explain_os_errors(function: Callable) -> Callable:
    """Decorate a stage's entry point: an error of the operating system (read-only folder, full
    disk, missing folder) becomes one ``OSError`` whose message names the file and what to do.

    Errors the recipe raised itself (no ``errno``) pass unchanged.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from msbg.batch import os_error_message

        try:
            return function(*args, **kwargs)
        except OSError as err:
            if err.errno is None:
                raise
            raise OSError(err.errno, os_error_message(err)) from None

    return wrapper
