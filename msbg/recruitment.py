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
from msbg.gammatone import Filterbank, load_filterbank, padded_channels
from msbg.gammatone import _kernel_coefficients as _gammatone_coefficients
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
def _kernel_coefficients(cutoffs_hz: tuple[float, ...], sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
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
    """Envelope, recruitment gain and channel sum, stage by stage (numpy; the envelope by the
    compiled kernel when numba is available).

    The reference path: :meth:`msbg.ear.Cochlea.simulate` uses it without numba, else the fused
    :func:`filter_envelope_forward` / :func:`recruit_and_sum_backward` (equal to rounding).

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
    envelopes = envelope_time_major(channels, erb_hz, sample_rate)
    recruited = recruit(channels, envelopes, ratios, full_scale_db_spl, catch_up_level_db_spl, channel_axis=1)
    return np.sum(recruited, axis=1)


#: Samples of odd extension at each end of the envelope's ``filtfilt``: 3 * max(len(a), len(b)) - 1.
ENVELOPE_PADLEN = 8
#: Largest work buffer (bytes) a caller's ``workspace`` keeps between calls (~28 MB per second
#: of 44.1 kHz signal for a 36-channel bank); larger ones are allocated per call.
MAX_WORKSPACE_BYTES = 256 * 2**20


#: Storage type of the forward envelope pass (n_samples x n_lanes) between the two fused
#: kernels. All arithmetic is float64; storing this smooth intermediate in float32 (rounding:
#: 2**-24 of each value) saves memory traffic (~3 % of an ear's time) and changes ear outputs
#: by <= 1e-8 of their peak (measured). The channels themselves stay float64 (float32 there
#: changed outputs by ~1e-6).
FORWARD_DTYPE = np.float32


def _work_array(workspace: dict | None, key: str, shape: tuple[int, int], dtype: npt.DTypeLike) -> np.ndarray:
    """A C-contiguous array of ``shape``, reusing ``workspace[key]``'s memory.

    Fresh memory costs page faults (~6 ms per 85 MB here); a kept buffer does not.
    """
    size = shape[0] * shape[1]
    dtype = np.dtype(dtype)
    if workspace is None or size * dtype.itemsize > MAX_WORKSPACE_BYTES:
        return np.empty(shape, dtype=dtype)
    buffer = workspace.get(key)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = workspace[key] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def fused_available(
    bank: Filterbank,
    full_scale_db_spl: float,
    catch_up_level_db_spl: float = CATCH_UP_LEVEL_DB_SPL,
) -> bool:
    """Whether :func:`filter_envelope_forward` / :func:`recruit_and_sum_backward` can run:
    numba present, a 4-section gammatone bank and a sane calibration (``env_max`` above
    :data:`ENVELOPE_FLOOR`)."""
    env_max = np.power(10, 0.05 * (catch_up_level_db_spl - full_scale_db_spl))
    return _kernels.AVAILABLE and bank.sos.shape[1] == 4 and bool(env_max > ENVELOPE_FLOOR)


def filter_envelope_forward(
    signal: npt.NDArray[np.float64],
    bank: Filterbank,
    workspace: dict | None = None,
    forward_dtype: npt.DTypeLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gammatone channels and the forward pass of their envelope filter (compiled, fused).

    First half of the fused cochlea path (numba only, see :func:`fused_available`): one pass
    over time computes the channels (as :func:`msbg.gammatone.gammatone_filter_time_major`)
    and, while they are in cache, the forward pass of :func:`envelope`'s ``filtfilt``.

    Parameters
    ----------
    signal : ndarray [shape=(n_samples,)]
    bank : Filterbank
    workspace : dict, optional
        Owned by the caller: the two work arrays are views of buffers kept in it (up to
        :data:`MAX_WORKSPACE_BYTES` each) and are overwritten by the next call with it.
    forward_dtype : float32 or float64, optional
        Storage type of ``forward`` (default :data:`FORWARD_DTYPE`); the filters compute in
        float64.

    Returns
    -------
    channels : ndarray [shape=(n_samples, n_lanes)], float64
        ``n_lanes = padded_channels(bank.n_channels)``; the extra columns are exactly zero.
    forward : ndarray [shape=(n_samples + ENVELOPE_PADLEN, n_lanes)]
        Forward envelope pass (last rows: the end extension).
    """
    n_samples = len(signal)
    if n_samples <= ENVELOPE_PADLEN:
        raise ValueError(f"signal too short for the envelope filter: {n_samples} samples")
    n_lanes = padded_channels(bank.n_channels)
    biquad, highpass, delays = _gammatone_coefficients(bank.name, n_lanes)
    env_ba, env_zi = _padded_envelope_coefficients(bank.name, float(bank.sample_rate), n_lanes)
    channels = _work_array(workspace, "channels", (n_samples, n_lanes), np.float64)
    if forward_dtype is None:
        forward_dtype = FORWARD_DTYPE
    forward = _work_array(workspace, "forward", (n_samples + ENVELOPE_PADLEN, n_lanes), forward_dtype)
    cochlea_forward = _kernels.cochlea_kernels(n_lanes)[0]
    cochlea_forward(
        np.ascontiguousarray(signal, dtype=np.float64),
        biquad,
        delays,
        highpass,
        env_ba,
        env_zi,
        ENVELOPE_PADLEN,
        channels,
        forward,
    )
    return channels, forward


def recruit_and_sum_backward(
    channels: npt.NDArray[np.float64],
    forward: npt.NDArray[np.float64],
    bank: Filterbank,
    ratios: npt.NDArray[np.float64],
    full_scale_db_spl: float,
    catch_up_level_db_spl: float = CATCH_UP_LEVEL_DB_SPL,
) -> npt.NDArray[np.float64]:
    """Second half of the fused path: backward envelope pass, gain and channel sum.

    Equals :func:`recruit_and_sum_time_major` of the bank's channels up to rounding (the
    gain's power law and the order of the channel sum differ in the last bits; a float32
    ``forward`` adds ~1e-8 of the peak).

    Parameters
    ----------
    channels, forward : ndarray
        From :func:`filter_envelope_forward`.
    bank : Filterbank
    ratios : ndarray [shape=(bank.n_channels,)]
        Expansion ratios.
    full_scale_db_spl : float

    Returns
    -------
    ndarray [shape=(n_samples,)]
        The recruited channels summed (before the recombination gain).
    """
    env_max = np.power(10, 0.05 * (catch_up_level_db_spl - full_scale_db_spl))
    n_lanes = channels.shape[1]
    env_ba, env_zi = _padded_envelope_coefficients(bank.name, float(bank.sample_rate), n_lanes)
    exponents = np.zeros(n_lanes)  # silent lanes: gain 1 times a zero channel
    exponents[: len(ratios)] = np.asarray(ratios, dtype=np.float64) - 1
    out = np.empty(channels.shape[0])
    recruit_backward = _kernels.cochlea_kernels(n_lanes)[1]
    return recruit_backward(
        channels, forward, env_ba, env_zi, ENVELOPE_FLOOR, float(env_max), exponents, 1.0, out
    )


@functools.lru_cache(maxsize=8)
def _padded_envelope_coefficients(
    bank_name: str, sample_rate: float, n_lanes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Envelope (b, a) and lfilter_zi per channel as (6, n_lanes), (2, n_lanes); zero lanes
    beyond the bank's channels."""
    bank = load_filterbank(bank_name)
    cutoffs_hz = ENVELOPE_CUTOFF_FRACTION * np.minimum(ENVELOPE_MAX_CUTOFF_HZ, bank.erb_hz)
    ba, zi = _kernel_coefficients(tuple(float(f) for f in cutoffs_hz), sample_rate)
    padded_ba = np.zeros((6, n_lanes))
    padded_zi = np.zeros((2, n_lanes))
    padded_ba[:, : bank.n_channels] = ba
    padded_zi[:, : bank.n_channels] = zi
    return padded_ba, padded_zi


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
