"""File input and output of the batch runner: WAV (soundfile) and JSON, validated and atomic.

Outputs are written to a temporary file in the destination folder and then renamed over the
destination (``os.replace`` is atomic on POSIX): a killed run never leaves a truncated file, so a
re-run can trust every file that exists. Inputs are checked on reading, and a missing or
malformed file gives one error that names it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

#: libsndfile command ``SFC_SET_ADD_PEAK_CHUNK`` (sndfile.h); its argument SF_FALSE = 0.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050
#: Below this much free space (bytes) a failed write is blamed on a full disk.
_FULL_DISK_BYTES = 2**20


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name ends with the destination's suffix (libraries that infer the format from
    the extension still do so) and the file gets the permissions of an ordinary new file
    (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``. On failure it is deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    except OSError as err:
        raise _naming(err, path) from None
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
    finally:
        os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None or str(err.filename) == str(tmp):
            raise _naming(err, path) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` naming ``path`` (not the temporary file); picklable back to a parent process."""
    if err.errno is None:
        return err
    return OSError(err.errno, err.strerror, str(path))  # OSError() picks the subclass by errno


def write_wav_atomic(
    path: str | os.PathLike,
    signal: npt.ArrayLike,
    sample_rate: int,
    subtype: str = "FLOAT",
) -> None:
    """Write a WAV file atomically; the same signal always gives the same bytes.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if needed.
    signal : array_like [shape=(n_samples,) or (n_samples, n_channels)]
        Full scale 1.0.
    sample_rate : int
        Hz.
    subtype : str
        soundfile subtype: ``"FLOAT"`` (32-bit float, values beyond +-1 kept) or e.g.
        ``"PCM_16"`` (clipped to [-1, 1) by libsndfile).

    Raises
    ------
    OSError
        Naming ``path``, with the likely cause (full disk, no permission) when libsndfile
        gives none.
    """
    signal = np.asarray(signal)
    n_channels = 1 if signal.ndim == 1 else signal.shape[1]
    try:
        with (
            atomic_path(path) as tmp,
            sf.SoundFile(tmp, "w", int(sample_rate), n_channels, subtype=subtype, format="WAV") as f,
        ):
            # libsndfile writes a PEAK chunk with a wall-clock time stamp into float WAVs:
            # turned off, so that outputs are reproducible byte for byte.
            sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
            f.write(signal)
    except sf.LibsndfileError as err:  # says only "System error." when the disk is full
        folder = Path(path).parent
        raise OSError(_likely_errno(folder), f"libsndfile could not write it ({err})", str(path)) from None


def _likely_errno(folder: Path) -> int:
    """What most likely made a write into ``folder`` fail (libsndfile gives no errno)."""
    try:
        if shutil.disk_usage(folder).free < _FULL_DISK_BYTES:
            return errno.ENOSPC
    except OSError:
        return errno.ENOENT
    return errno.EIO if os.access(folder, os.W_OK) else errno.EACCES


def read_wav(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    n_channels: int | None = None,
) -> npt.NDArray[np.float64]:
    """Read a WAV (or any libsndfile format) as float64 and check its format.

    Parameters
    ----------
    path : path-like
    sample_rate : int, optional
        Expected sample rate (Hz); None accepts any.
    n_channels : int, optional
        Expected number of channels; None accepts any.

    Returns
    -------
    ndarray [shape=(n_samples, n_channels)], float64
        Full scale 1.0.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it cannot be decoded or has another sample rate or channel count (naming the file,
        what it has and what was expected).
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


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for error messages (e.g. ``"listener file"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not valid JSON (naming the file, line and column).
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
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {path} is not UTF-8 text: {err.reason}") from None


__all__ = ["atomic_path", "read_json", "read_wav", "write_wav_atomic"]
