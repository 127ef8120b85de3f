"""Atomic file output and validated input.

Every output of the recipe is written to a temporary file in the destination folder and then
renamed over the destination (``os.replace`` is atomic on POSIX), so a killed run never leaves a
truncated file behind and a re-run can trust any file that exists.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile command (sndfile.h); argument SF_FALSE = 0


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the destination's suffix so that libraries which infer the format
    from the extension (soundfile, torch) still do so. The file gets the permissions of an
    ordinary new file (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    except OSError as err:
        raise _naming(err, path) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        if err.filename is None or str(err.filename) == str(tmp_path):
            raise _naming(err, path) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` naming ``path`` (the destination, not a temporary file); picklable to a parent."""
    if err.errno is None:
        return err
    return OSError(err.errno, err.strerror, str(path))  # OSError() picks the subclass by errno


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


def write_csv_atomic(
    path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Write a CSV with ``header`` and ``rows`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_wav_atomic(
    path: str | os.PathLike, signal: np.ndarray, sample_rate: int, subtype: str = "FLOAT"
) -> None:
    """Write ``signal`` ([shape=(n_samples,) or (n_samples, n_channels)]) as a WAV atomically.

    ``subtype`` is a soundfile subtype: ``"FLOAT"`` (32-bit float, values beyond +-1 kept) or
    ``"PCM_16"`` (16-bit, clips to [-1, 1) as libsndfile does).
    """
    signal = np.asarray(signal)
    n_channels = 1 if signal.ndim == 1 else signal.shape[1]
    try:
        with atomic_path(path) as tmp, sf.SoundFile(tmp, "w", sample_rate, n_channels,
                                                    subtype=subtype, format="WAV") as f:
            # libsndfile adds a PEAK chunk with a wall-clock timestamp to float WAVs: turn it off
            # so that the same signal always gives the same bytes (reproducible, resumable outputs).
            sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
            f.write(signal)
    except sf.LibsndfileError as err:  # says only "System error." when the disk is full
        raise OSError(_likely_errno(Path(path).parent), f"libsndfile could not write it ({err})",
                      str(path)) from None


def _likely_errno(folder: Path) -> int:
    """What most likely made a write into ``folder`` fail (libsndfile gives no errno)."""
    try:
        if shutil.disk_usage(folder).free < 2**20:
            return errno.ENOSPC
    except OSError:
        return errno.ENOENT
    return errno.EIO if os.access(folder, os.W_OK) else errno.EACCES


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


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, turning a missing or malformed file into one clear error.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not valid JSON (the message names the file, line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None


def read_wav(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    n_channels: int | None = None,
) -> np.ndarray:
    """Read a WAV file as float64 [shape=(n_samples, n_channels)] and check its format.

    Parameters
    ----------
    path : path of the file.
    sample_rate : expected sample rate in Hz, or None for any.
    n_channels : expected number of channels, or None for any.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        signal, file_rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"cannot read audio file {path}: {err}") from None
    if sample_rate is not None and file_rate != sample_rate:
        raise ValueError(f"{path}: sample rate is {file_rate} Hz, expected {sample_rate} Hz")
    if n_channels is not None and signal.shape[1] != n_channels:
        raise ValueError(f"{path}: has {signal.shape[1]} channel(s), expected {n_channels}")
    return signal
