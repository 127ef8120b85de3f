"""44.1 kHz binaural files to 16 kHz mono ASR inputs (``docs/original_recipe.md`` §2.3).

For every MSBG output and every reference the original read the binaural file as float64,
resampled both channels together to 16 kHz with ``librosa.resample``, dropped the first 2 s (the
interferer-only lead-in of CEC1 scenes) and wrote the left and right channels as separate mono files
with soundfile's default subtype, 16-bit PCM, which clips the MSBG peaks above 1.

Resamplers (:data:`RESAMPLERS`; docs/prepare_data.md "Resampler" has the measured difference):

* ``"kaiser_best"`` (default, faithful): what the 2022 run's librosa 0.9 did by default,
  ``resampy.resample(..., filter="kaiser_best")``;
* ``"soxr_hq"``: ``soxr`` at quality ``"HQ"``, what ``librosa >= 0.10`` runs by default, about 50 times
  faster.

Both are followed by librosa's length rule: zero-padded or cut to ``ceil(n_in * ratio)`` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import resampy
import soundfile as sf
import soxr

from e032.io import read_wav, write_wav_atomic
from e032.manifests import ASR_SAMPLE_RATE

Resampler = Literal["kaiser_best", "soxr_hq"]
RESAMPLERS: tuple[str, ...] = ("kaiser_best", "soxr_hq")
RESAMPY_FILTER = "kaiser_best"  # librosa 0.9: res_type "kaiser_best" = resampy's filter of that name
SOXR_QUALITY = "HQ"  # librosa >= 0.10: res_type "soxr_hq"
#: How each resampler is recorded in prepare_settings.json ("soxr HQ" is what earlier versions wrote).
RESAMPLER_STAMPS: dict[str, str] = {
    "kaiser_best": f"resampy {RESAMPY_FILTER}",
    "soxr_hq": f"soxr {SOXR_QUALITY}",
}


def resample(
    signal: npt.NDArray[np.float64],
    sample_rate_in: int,
    sample_rate_out: int,
    resampler: Resampler = "kaiser_best",
) -> npt.NDArray[np.float64]:
    """Resample along the first axis like ``librosa.resample``, length ``ceil(n_in * out / in)``.

    Parameters
    ----------
    signal : [shape=(n_samples,) or (n_samples, n_channels)] float64 signal.
    sample_rate_in, sample_rate_out : sample rates in Hz.
    resampler : {"kaiser_best", "soxr_hq"}
        librosa 0.9's default (resampy, the 2022 run) or librosa >= 0.10's (soxr HQ).

    Returns
    -------
    [shape=(ceil(n_samples * sample_rate_out / sample_rate_in), ...)] float64 signal.

    Raises
    ------
    ValueError
        If ``resampler`` is not one of :data:`RESAMPLERS`.

    Examples
    --------
    >>> resample(np.zeros((441, 2)), 44100, 16000).shape
    (160, 2)
    """
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")
    if sample_rate_in == sample_rate_out:
        return np.array(signal, dtype=np.float64)
    signal = np.ascontiguousarray(signal, dtype=np.float64)
    if resampler == "kaiser_best":
        resampled = resampy.resample(signal, sample_rate_in, sample_rate_out, axis=0, filter=RESAMPY_FILTER)
    else:
        resampled = soxr.resample(signal, sample_rate_in, sample_rate_out, quality=SOXR_QUALITY)
    # librosa's length rule, float ratio included (it can differ from exact integer arithmetic)
    n_out = int(np.ceil(signal.shape[0] * (float(sample_rate_out) / sample_rate_in)))
    if resampled.shape[0] >= n_out:
        return resampled[:n_out]
    pad = [(0, n_out - resampled.shape[0])] + [(0, 0)] * (resampled.ndim - 1)
    return np.pad(resampled, pad)


def trim_start(signal: npt.NDArray[np.float64], trim_s: float, sample_rate: int) -> npt.NDArray[np.float64]:
    """Drop the first ``trim_s`` seconds (``floor(trim_s * sample_rate)`` samples).

    Examples
    --------
    >>> trim_start(np.arange(5.0), 0.5, 4)
    array([2., 3., 4.])
    """
    return signal[math.floor(trim_s * sample_rate) :]


@dataclass(frozen=True)
class MonoSplitJob:
    """One binaural 44.1 kHz file to two mono files (left, right) at the target rate."""

    source: Path
    left: Path
    right: Path


@dataclass(frozen=True)
class MonoSplitSettings:
    """Settings shared by every :class:`MonoSplitJob` of a run."""

    sample_rate_in: int = 44100
    sample_rate_out: int = ASR_SAMPLE_RATE
    trim_s: float = 2.0
    subtype: str = "PCM_16"  # soundfile subtype; PCM_16 clips to [-1, 1) like the original
    resampler: str = "kaiser_best"  # one of RESAMPLERS


def is_done(job: MonoSplitJob, settings: MonoSplitSettings) -> bool:
    """True if both outputs exist at the configured rate and subtype (outputs are atomic)."""
    for path in (job.left, job.right):
        if not path.is_file():
            return False
        info = sf.info(str(path))
        if info.samplerate != settings.sample_rate_out or info.subtype != settings.subtype:
            return False
    return True


def run_mono_split(job: MonoSplitJob, settings: MonoSplitSettings) -> bool:
    """Resample, trim and write one job unless it is done; return True if it wrote files.

    Raises
    ------
    FileNotFoundError, ValueError
        If the source is missing or is not a 2-channel file at ``sample_rate_in``.
    """
    if is_done(job, settings):
        return False
    signal = read_wav(job.source, sample_rate=settings.sample_rate_in, n_channels=2)
    signal = resample(signal, settings.sample_rate_in, settings.sample_rate_out, settings.resampler)
    signal = trim_start(signal, settings.trim_s, settings.sample_rate_out)
    write_wav_atomic(job.left, signal[:, 0], settings.sample_rate_out, subtype=settings.subtype)
    write_wav_atomic(job.right, signal[:, 1], settings.sample_rate_out, subtype=settings.subtype)
    return True
