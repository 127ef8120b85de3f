"""Outer/middle-ear filters and the final 18 kHz low-pass (design and application).

The sound field at the listener's position is carried to the cochlea by a linear-phase FIR whose
gain (dB) is the source-to-eardrum correction minus the middle-ear attenuation, 0 dB at 1 kHz.
After the cochlea simulation the inverse response (negated gains, designed independently) carries
the signal back, and a 133-tap low-pass removes processing noise above ~18 kHz. Each filter is
applied causally (no delay compensation): 507 + 507 + 66 samples of delay at 44.1 kHz.

Designs are pure functions, cached per argument; application is separate.

References
----------
.. [1] M. A. Stone and B. C. J. Moore, "Tolerable hearing-aid delays. I. Estimation of limits
   imposed by the auditory path alone using simulated hearing losses", Ear Hear. 20(3), 1999.
.. [2] MATLAB ``fir2`` (frequency-sampling FIR design), as ported in pyclarity ``msbg_utils.fir2``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.signal

from msbg.tables import DF_ED, FF_ED, HZ, ITU_ERP_DRP, ITU_HZ, MIDEAR, UPPER_CUTOFF_HZ

SourcePosition = Literal["ff", "df", "ITU"]
SOURCE_POSITIONS: tuple[str, ...] = ("ff", "df", "ITU")

#: Kaiser beta of the outer/middle-ear FIRs and of the final low-pass.
EAR_FIR_KAISER_BETA = 4.0
LOWPASS_KAISER_BETA = 8.0


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def fir2_design(
    n_taps: int,
    norm_freqs: tuple[float, ...],
    gains: tuple[float, ...],
    window: str | tuple[str, float] = "hamming",
) -> npt.NDArray[np.float64]:
    """Frequency-sampling FIR design with MATLAB ``fir2`` semantics (as pyclarity's ``fir2``).

    Parameters
    ----------
    n_taps : int
        Filter length (order + 1).
    norm_freqs : tuple of float
        Break frequencies, 0 ... 1 (1 = Nyquist), non-decreasing; the first and last are forced
        to 0 and 1 as MATLAB does.
    gains : tuple of float
        Linear gain at each break frequency.
    window : str or (str, float)
        A :func:`scipy.signal.get_window` spec, e.g. ``"hamming"`` or ``("kaiser", 4.0)``.

    Returns
    -------
    ndarray [shape=(n_taps,)]
        Read-only filter coefficients (cached per argument).

    Notes
    -----
    The gain is interpolated linearly *in grid index* onto ``n_grid + 1`` points
    (``n_grid = 512`` below 1024 taps, else the next power of two). Segment ``i`` covers the grid
    points ``nb ... fix(f[i+1] * (n_grid + 1)) - 1``; a break frequency that falls before grid
    point 1 therefore never gets its own grid point, so the DC value is the gain of the last
    break below ``1 / (n_grid + 1)`` (e.g. 40 Hz for the ear filters), as in MATLAB.
    A linear-phase term, Hermitian mirror and inverse FFT give the impulse response, truncated to
    ``n_taps`` and windowed.

    Examples
    --------
    >>> b = fir2_design(31, (0.0, 0.5, 1.0), (1.0, 1.0, 1.0))
    >>> int(np.argmax(b)), round(float(b.sum()), 3)
    (15, 1.0)
    """
    return _fir2_cached(int(n_taps), tuple(map(float, norm_freqs)), tuple(map(float, gains)), window)


@functools.lru_cache(maxsize=64)
def _fir2_cached(n_taps: int, norm_freqs: tuple[float, ...], gains: tuple[float, ...], window) -> np.ndarray:
    freqs = np.array(norm_freqs)
    gain = np.array(gains)
    n_grid = 2 ** math.ceil(math.log2(n_taps)) if n_taps >= 1024 else 512
    lap = int(n_grid / 25)  # transition width for repeated (step) frequencies
    freqs[0], freqs[-1] = 0.0, 1.0
    n_points = n_grid + 1
    grid_gain = np.zeros(n_points)
    grid_gain[0] = gain[0]
    start = 0
    # Loop over break-frequency segments (a few dozen, design time only).
    for i, step in enumerate(np.diff(freqs)):
        if step == 0:
            start = int(np.ceil(start - lap / 2))
            stop = start + lap - 1
        else:
            stop = int(np.fix(freqs[i + 1] * n_points)) - 1
        if stop >= start:
            idx = np.arange(start, stop + 1)
            frac = 0.0 if stop == start else (idx - start) / (stop - start)
            grid_gain[start : stop + 1] = frac * gain[i + 1] + (1 - frac) * gain[i]
        start = stop + 1
    delay = 0.5 * (n_taps - 1)
    spectrum = grid_gain * np.exp(-delay * 1j * math.pi * np.arange(n_points) / (n_points - 1))
    spectrum = np.concatenate((spectrum, spectrum[n_points - 2 : 0 : -1].conj()))
    impulse = np.real(np.fft.ifft(spectrum))
    taps = impulse[:n_taps] * scipy.signal.get_window(window, n_taps, fftbins=False)
    return _frozen(taps)


@functools.lru_cache(maxsize=8)
def source_correction_db(src_pos: str) -> npt.NDArray[np.float64]:
    """Field-to-eardrum correction (dB) on the :data:`~msbg.tables.HZ` grid.

    Parameters
    ----------
    src_pos : {"ff", "df", "ITU"}
        Free field frontal (Shaw 1974), diffuse field, or ITU-T P.58 ear reference point
        (interpolated onto ``HZ``).

    Raises
    ------
    ValueError
        For any other ``src_pos``.
    """
    if src_pos == "ff":
        return FF_ED
    if src_pos == "df":
        return DF_ED
    if src_pos == "ITU":
        return _frozen(np.interp(HZ, ITU_HZ, ITU_ERP_DRP))
    raise ValueError(f"src_pos must be one of {SOURCE_POSITIONS}, got {src_pos!r}")


@functools.lru_cache(maxsize=16)
def ear_filter_taps(src_pos: str, sample_rate: int, backward: bool) -> npt.NDArray[np.float64]:
    """Outer/middle-ear FIR (pyclarity ``Ear.src_to_cochlea_filt``), 1015 taps at 44.1 kHz.

    Parameters
    ----------
    src_pos : {"ff", "df", "ITU"}
    sample_rate : int
        Hz.
    backward : bool
        False: source to cochlea (gain = correction - MIDEAR dB); True: cochlea to source
        (the negated gains, designed separately, so the pair is only approximately inverse).

    Returns
    -------
    ndarray [shape=(2 * floor(sample_rate / 16000 * 368 / 2) + 1,)]
    """
    nyquist_hz = int(sample_rate / 2.0)
    below = HZ < nyquist_hz
    correction_db = source_correction_db(src_pos) - MIDEAR
    at_nyquist_db = np.interp(nyquist_hz, HZ, correction_db)
    freqs = np.append(HZ[below], nyquist_hz) / nyquist_hz
    gains_db = np.append(correction_db[below], at_nyquist_db)
    if backward:
        gains_db = -gains_db
    gains = np.power(10, 0.05 * gains_db)
    # A 23 ms window, good down to ~100 Hz: order 1014 at 44.1 kHz (368 at 16 kHz).
    order = 2 * math.floor((sample_rate / 16e3) * 368 / 2)
    return fir2_design(order + 1, tuple(freqs), tuple(gains), ("kaiser", EAR_FIR_KAISER_BETA))


@functools.lru_cache(maxsize=4)
def lowpass_taps(sample_rate: int) -> npt.NDArray[np.float64]:
    """Design the final low-pass: 2 floor(1.5 ms * fs) + 1 taps, 18 kHz cut-off, Kaiser beta 8."""
    n_taps = 2 * math.floor(0.0015 * sample_rate) + 1
    taps = scipy.signal.firwin(
        n_taps, UPPER_CUTOFF_HZ / int(sample_rate / 2), window=("kaiser", LOWPASS_KAISER_BETA)
    )
    return _frozen(taps)


@functools.lru_cache(maxsize=8)
def output_taps(src_pos: str, sample_rate: int) -> npt.NDArray[np.float64]:
    """Backward ear filter followed by the low-pass, as one FIR (their convolution)."""
    return _frozen(np.convolve(ear_filter_taps(src_pos, sample_rate, True), lowpass_taps(sample_rate)))


def apply_fir(signal: npt.NDArray[np.float64], taps: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Causal FIR filtering, same length as the input (``lfilter(taps, 1, signal)``).

    Computed by FFT convolution along the last axis; it equals direct filtering up to
    floating-point rounding (~1e-16 of the signal's peak).

    Parameters
    ----------
    signal : ndarray [shape=(..., n_samples)]
    taps : ndarray [shape=(n_taps,)]
    """
    n_samples = signal.shape[-1]
    if n_samples == 0:
        return np.zeros_like(signal, dtype=np.float64)
    full = scipy.signal.oaconvolve(signal, np.broadcast_to(taps, signal.shape[:-1] + taps.shape), axes=-1)
    return full[..., :n_samples]
