"""Loudness recruitment and threshold elevation by envelope expansion.

Each gammatone channel's envelope (full-wave rectified, zero-phase elliptic low-pass) is
expanded: the channel is multiplied by ``(env / env_max) ** (ER - 1)`` where the expansion ratio
``ER = C / (C - HL)`` comes from the hearing loss ``HL`` (dB HL) at the channel's centre frequency
and the catch-up level ``C = 105`` dB SPL. Sounds at the catch-up level are unchanged; quieter ones
are attenuated progressively, so they become inaudible near threshold and grow in loudness faster
than normal.

References
----------
.. [1] B. C. J. Moore and B. R. Glasberg, "Simulation of the effects of loudness recruitment and
   threshold elevation on the intelligibility of speech in quiet and in a background of speech",
   J. Acoust. Soc. Am. 94(4), 2050-2062, 1993.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import scipy.signal

from msbg import _kernels
from msbg.audiogram import Audiogram
from msbg.tables import CATCH_UP_LEVEL_DB_SPL

#: Envelope low-pass: cut-off = 0.75 * min(100 Hz, ERB) (0.75 puts -3 dB near the ERB edge).
ENVELOPE_CUTOFF_FRACTION = 30 / 40
ENVELOPE_MAX_CUTOFF_HZ = 100.0
#: Smallest envelope value (keeps the gain finite in silence).
ENVELOPE_FLOOR = 1e-9


def expansion_ratios(
    centre_hz: npt.NDArray[np.float64],
    audiogram: Audiogram,
    catch_up_level_db_spl: float = CATCH_UP_LEVEL_DB_SPL,
) -> npt.NDArray[np.float64]:
    """Expansion ratio ``C / (C - HL(cf))`` per channel (``compute_recruitment_parameters``).

    ``HL(cf)`` is the audiogram interpolated linearly in Hz, held flat outside its range.

    Examples
    --------
    >>> a = Audiogram(levels=[0, 0, 0, 0, 0, 0, 0, 0])
    >>> expansion_ratios(np.array([100.0, 1000.0]), a).tolist()
    [1.0, 1.0]
    """
    return catch_up_level_db_spl / (catch_up_level_db_spl - audiogram.level_at(centre_hz))


@functools.lru_cache(maxsize=64)
def envelope_lowpass(cutoff_hz: float, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """2nd-order elliptic low-pass (0.25 dB ripple, 35 dB stop band), (b, a), cached."""
    b, a = scipy.signal.ellip(2, 0.25, 35, cutoff_hz / (sample_rate / 2))
    b.flags.writeable = False
    a.flags.writeable = False
    return b, a


def envelope(
    channels: npt.NDArray[np.float64], erb_hz: npt.NDArray[np.float64], sample_rate: float
) -> npt.NDArray[np.float64]:
    """Envelope of each channel (pyclarity ``compute_envelope``).

    Full-wave rectification, then ``filtfilt`` (odd extension of 8 samples) with the channel's
    elliptic low-pass of cut-off ``0.75 * min(100, ERB)`` Hz. Channels sharing a cut-off (all
    with ERB >= 100 Hz) are filtered in one call.

    Parameters
    ----------
    channels : ndarray [shape=(n_channels, n_samples)]
    erb_hz : ndarray [shape=(n_channels,)]
    sample_rate : float
        Hz.

    Returns
    -------
    ndarray [shape=(n_channels, n_samples)]
    """
    cutoffs_hz = ENVELOPE_CUTOFF_FRACTION * np.minimum(ENVELOPE_MAX_CUTOFF_HZ, erb_hz)
    rectified = np.abs(channels)
    result = np.empty_like(rectified)
    # Loop over distinct cut-offs (<= ~11 groups), not over samples.
    for cutoff_hz in np.unique(cutoffs_hz):
        rows = np.flatnonzero(cutoffs_hz == cutoff_hz)
        b, a = envelope_lowpass(float(cutoff_hz), float(sample_rate))
        padlen = 3 * max(len(a), len(b)) - 1
        result[rows] = scipy.signal.filtfilt(b, a, rectified[rows], axis=-1, padlen=padlen)
    return result


@functools.lru_cache(maxsize=8)
def _kernel_coefficients(
    cutoffs_hz: tuple[float, ...], sample_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (b, a) as (6, n_channels) and lfilter_zi as (2, n_channels)."""
    ba = np.zeros((6, len(cutoffs_hz)))
    zi = np.zeros((2, len(cutoffs_hz)))
    for ch, cutoff_hz in enumerate(cutoffs_hz):  # design time, cached
        b, a = envelope_lowpass(cutoff_hz, sample_rate)
        ba[:3, ch], ba[3:, ch] = b, a
        zi[:, ch] = scipy.signal.lfilter_zi(b, a)
    return ba, zi


def envelope_time_major(
    channels: npt.NDArray[np.float64], erb_hz: npt.NDArray[np.float64], sample_rate: float
) -> npt.NDArray[np.float64]:
    """As :func:`envelope` for ``channels [shape=(n_samples, n_channels)]``, same layout out.

    Uses the compiled kernel when numba is available.
    """
    if not _kernels.AVAILABLE:
        return envelope(channels.T, erb_hz, sample_rate).T
    cutoffs_hz = ENVELOPE_CUTOFF_FRACTION * np.minimum(ENVELOPE_MAX_CUTOFF_HZ, erb_hz)
    ba, zi = _kernel_coefficients(tuple(float(f) for f in cutoffs_hz), float(sample_rate))
    padlen = 3 * 3 - 1  # 3 * max(len(a), len(b)) - 1, as pyclarity passes to filtfilt
    if channels.shape[0] <= padlen:
        raise ValueError(f"signal too short for the envelope filter: {channels.shape[0]} samples")
    buf = np.empty((channels.shape[0] + 2 * padlen, channels.shape[1]))
    return _kernels.envelope_nc(np.ascontiguousarray(channels), ba, zi, padlen, 0.0, -1.0, buf)


def recruit_and_sum_time_major(
    channels: npt.NDArray[np.float64],
    erb_hz: npt.NDArray[np.float64],
    sample_rate: float,
    ratios: npt.NDArray[np.float64],
    full_scale_db_spl: float,
    catch_up_level_db_spl: float = CATCH_UP_LEVEL_DB_SPL,
) -> npt.NDArray[np.float64]:
    """Envelope, recruitment gain and channel sum in one go (compiled kernels + numpy power).

    Equals ``recruit(channels, envelope_time_major(...), ...).sum(axis=1)`` up to rounding.

    Parameters
    ----------
    channels : ndarray [shape=(n_samples, n_channels)]
    erb_hz, ratios : ndarray [shape=(n_channels,)]
    sample_rate, full_scale_db_spl : float

    Returns
    -------
    ndarray [shape=(n_samples,)]
        The recruited channels summed (before the recombination gain).
    """
    env_max = np.power(10, 0.05 * (catch_up_level_db_spl - full_scale_db_spl))
    if not _kernels.AVAILABLE or not env_max > ENVELOPE_FLOOR:
        envelopes = envelope_time_major(channels, erb_hz, sample_rate)
        return np.sum(
            recruit(
                channels,
                envelopes,
                ratios,
                full_scale_db_spl,
                catch_up_level_db_spl,
                channel_axis=1,
            ),
            axis=1,
        )
    cutoffs_hz = ENVELOPE_CUTOFF_FRACTION * np.minimum(ENVELOPE_MAX_CUTOFF_HZ, erb_hz)
    ba, zi = _kernel_coefficients(tuple(float(f) for f in cutoffs_hz), float(sample_rate))
    padlen = 3 * 3 - 1
    if channels.shape[0] <= padlen:
        raise ValueError(f"signal too short for the envelope filter: {channels.shape[0]} samples")
    channels = np.ascontiguousarray(channels)
    buf = np.empty((channels.shape[0] + 2 * padlen, channels.shape[1]))
    gains = _kernels.envelope_nc(channels, ba, zi, padlen, ENVELOPE_FLOOR, float(env_max), buf)
    np.power(gains, (ratios - 1)[None, :], out=gains)
    return _kernels.weighted_channel_sum(channels, gains, np.empty(channels.shape[0]))


def recruit(
    channels: npt.NDArray[np.float64],
    envelopes: npt.NDArray[np.float64],
    ratios: npt.NDArray[np.float64],
    full_scale_db_spl: float,
    catch_up_level_db_spl: float = CATCH_UP_LEVEL_DB_SPL,
    channel_axis: int = 0,
) -> npt.NDArray[np.float64]:
    """Apply the recruitment gain to each channel (pyclarity ``recruitment``).

    Parameters
    ----------
    channels, envelopes : ndarray [shape=(n_channels, n_samples)]
        (or ``(n_samples, n_channels)`` with ``channel_axis=1``)
    ratios : ndarray [shape=(n_channels,)]
        Expansion ratios from :func:`expansion_ratios`.
    full_scale_db_spl : float
        dB SPL of a full-scale (RMS 1) signal, ``equiv_0db_spl + ahr``.

    Returns
    -------
    ndarray [shape=(n_channels, n_samples)]
        ``channels * (clip(env, 1e-9, env_max) / env_max) ** (ratio - 1)``, with
        ``env_max = 10 ** ((C - full_scale_db_spl) / 20)``. Inputs are not modified.
    """
    env_max = np.power(10, 0.05 * (catch_up_level_db_spl - full_scale_db_spl))
    gain = np.clip(envelopes, ENVELOPE_FLOOR, env_max) if env_max > ENVELOPE_FLOOR else None
    if gain is None:  # degenerate calibration; keep pyclarity's order of the two clips
        gain = np.where(envelopes > env_max, env_max, envelopes)
        gain[gain < ENVELOPE_FLOOR] = ENVELOPE_FLOOR
    gain /= env_max
    exponents = (ratios - 1)[:, None] if channel_axis == 0 else (ratios - 1)[None, :]
    np.power(gain, exponents, out=gain)
    gain *= channels
    return gain
