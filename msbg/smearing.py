"""Spectral smearing: simulate the broadened auditory filters of an impaired cochlea.

Short-time power spectra (256-sample frames, hop 64, FFT 512) are multiplied by a matrix that
undoes normal auditory filtering and applies broadened filtering (Baer & Moore). Magnitudes are
replaced by the square root of the smeared power, phases are kept, and frames are overlap-added.

References
----------
.. [1] T. Baer and B. C. J. Moore, "Effects of spectral smearing on the intelligibility of
   sentences in noise", J. Acoust. Soc. Am. 94(3), 1229-1241, 1993.
.. [2] T. Baer and B. C. J. Moore, "Effects of spectral smearing on the intelligibility of
   sentences in the presence of interfering speech", J. Acoust. Soc. Am. 95(4), 2277-2280, 1994.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from msbg import _kernels

FFT_SIZE: Final = 512  # (pyclarity FFT_SIZE)
FRAME_LEN: Final = 256  # samples (pyclarity FRAME_SIZE)
HOP_LEN: Final = 64  # samples (pyclarity SHIFT)
N_OVERLAP: Final = FRAME_LEN // HOP_LEN  # 4 frames overlap each output sample
N_BINS: Final = FFT_SIZE // 2  # 256 smeared bins (Nyquist bin set to 0)

#: Type of the smearing matrix product and of the inverse FFT: float64 (default: outputs as
#: before, byte for byte) or float32 with the environment variable ``MSBG_SMEAR_DTYPE=float32`` set
#: before msbg is imported (worker processes inherit it). float32 halves their cost; the
#: forward FFT, magnitudes and phases stay float64 (float32 there moved outputs by up to 1.1e-5
#: of the peak: the phasor ``X / |X|`` of weak bins loses its accuracy). Effect of float32 on the
#: MSBG outputs, vs float64: <= 3.5e-7 of the peak (CPC1 sample, both ears, three severities).
SMEAR_DTYPE: Final = np.float32 if os.environ.get("MSBG_SMEAR_DTYPE") == "float32" else np.float64

Framing = Literal["pyclarity", "clean"]
FRAMINGS: tuple[str, ...] = ("pyclarity", "clean")

#: Broadening factors (lower, upper) per severity (pyclarity ``HL_PARAMS[...]["smear_params"]``).
SMEAR_BROADENING: Final[dict[str, tuple[float, float]]] = {
    "SEVERE": (4.0, 2.0),
    "MODERATE": (2.4, 1.6),
    "MILD": (1.6, 1.1),
}


def auditory_filter_matrix(
    broadening_lower: float, broadening_upper: float, sample_rate: float, n_bins: int = N_BINS
) -> npt.NDArray[np.float64]:
    """Rounded-exponential auditory filters sampled on FFT bins (pyclarity ``audfilt``).

    Row ``i`` is the filter centred on bin ``i`` (``f = i * sample_rate / (2 n_bins)`` Hz):
    weights ``(1 + g) exp(-g)`` with ``g = |i - j| / i * 4 f / (ERB(f) r)``, ``r`` the lower
    (``j < i``) or upper (``j >= i``) broadening, divided by ``ERB(f) (r_l + r_u) / (2 * 24.7)``
    to remove the spectral tilt. ``ERB(f) = 24.7 (4.37 f / 1000 + 1)`` (Glasberg & Moore 1990).

    Returns
    -------
    ndarray [shape=(n_bins, n_bins)]
    """
    n_bins = int(n_bins)
    matrix = np.zeros((n_bins, n_bins))
    matrix[0, 0] = 1.0 / ((broadening_lower + broadening_upper) / 2)
    i = np.arange(1, n_bins)[:, None]
    j = np.arange(n_bins)[None, :]
    f_hz = i * np.divide(sample_rate, 2 * n_bins)
    erb_hz = 24.7 * ((f_hz * 0.00437) + 1.0)
    broadening = np.where(j < i, broadening_lower, broadening_upper)
    g = np.abs((i - j) / i) * (4.0 * f_hz / (erb_hz * broadening))
    matrix[1:] = (1 + g) * np.exp(-g) / (erb_hz * (broadening_lower + broadening_upper) / (2 * 24.7))
    return matrix


@functools.lru_cache(maxsize=8)
def smearing_matrix(
    broadening_lower: float, broadening_upper: float, sample_rate: float
) -> npt.NDArray[np.float64]:
    """Smearing matrix ``S ~= A_normal^-1 A_wide`` (pyclarity ``make_smear_mat3``), cached.

    The normal-filter matrix is extended by 128 columns holding each upper row's filter mirrored
    about Nyquist, so that the (minimum-norm least-squares) deconvolution behaves near Nyquist.

    Returns
    -------
    ndarray [shape=(256, 256)], read-only
        Maps a frame's power spectrum (bins 0 ... 255) to its smeared power spectrum.
    """
    half = FFT_SIZE // 4  # 128
    normal = auditory_filter_matrix(1, 1, sample_rate, N_BINS)
    wide = auditory_filter_matrix(broadening_lower, broadening_upper, sample_rate, N_BINS)
    extended = np.concatenate((normal, np.zeros((N_BINS, half))), axis=1)
    # Column N_BINS + m of row i (i >= 128) mirrors column 2 i - N_BINS - m, for columns < 2 i - 1.
    rows = np.arange(half, N_BINS)[:, None]
    cols = np.arange(N_BINS, N_BINS + half)[None, :]
    mirror = cols < 2 * rows - 1
    source_col = np.where(mirror, 2 * rows - cols, 0)
    extended[half:, N_BINS:] = np.where(mirror, np.take_along_axis(normal[half:], source_col, 1), 0)
    # One BLAS thread: multi-threaded BLAS is several times slower for this small problem on a
    # busy machine (and the result is the same).
    with threadpool_limits(1):
        smear = np.real(np.linalg.lstsq(extended, wide, rcond=-1)[0])[:N_BINS, :]
    smear = np.ascontiguousarray(smear)
    smear.flags.writeable = False
    return smear


@functools.lru_cache(maxsize=1)
def frame_window() -> npt.NDArray[np.float64]:
    """Analysis/synthesis window: raised cosine / sqrt(1.5), so that w^2 sums to 1 at hop 64."""
    n = np.arange(1, FRAME_LEN + 1)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * (n - 0.5) / FRAME_LEN)) / math.sqrt(1.5)
    window.flags.writeable = False
    return window


def smeared_length(n_samples: int) -> int:
    """Output length of :func:`smear`: ``(ceil(n / 64) + 3) * 64``."""
    return (math.ceil(n_samples / HOP_LEN) + N_OVERLAP - 1) * HOP_LEN


def smear(
    signal: npt.NDArray[np.float64],
    smear_matrix: npt.NDArray[np.float64],
    framing: Framing = "pyclarity",
) -> npt.NDArray[np.float64]:
    """Smear the short-time spectrum of ``signal`` (pyclarity ``smear3``), vectorised over frames.

    Parameters
    ----------
    signal : ndarray [shape=(n_samples,)]
    smear_matrix : ndarray [shape=(256, 256)]
        From :func:`smearing_matrix`.
    framing : {"pyclarity", "clean"}
        "pyclarity" (default) reproduces pyclarity's framing exactly, including the two buffer
        quirks in the Notes. "clean" analyses ``192 zeros + x`` with plain overlap-add of every
        frame that overlaps the output: the same length and 192-sample delay, without the
        duplicated start and the stale, incomplete tail.

    Returns
    -------
    ndarray [shape=(smeared_length(n_samples),)]

    Notes
    -----
    pyclarity's frame loop refills each new frame's last hop from the *read pointer*, which
    starts at 64 rather than 256. The analysed stream is therefore ``x[0:256]`` followed by
    ``x[64:]``: the first four frames mix the first 256 samples, and from frame 4 on frame ``k``
    holds ``x[64 (k - 3) : 64 (k - 3) + 256]``, i.e. the output lags the input by 192 samples.
    This is kept for faithfulness (it is part of MSBG's total delay).

    The three flush blocks after the last frame ``F[K-1]`` are likewise built from a rotated
    buffer: block ``K + t`` (t = 0, 1, 2) is ``F[K-4][t] + sum_{m < 2-t} F[K-1-m][t+1+m]``
    (segments of 64), i.e. the stale frame ``K-4`` replaces the last contribution. Reproduced.

    Smeared powers that come out negative (the least-squares matrix has negative entries) give
    an imaginary "magnitude" in pyclarity (``sqrt`` of a complex number), i.e. magnitude
    ``sqrt(|p|)`` with the phase turned by +90 degrees; reproduced here.
    """
    n_samples = len(signal)
    n_frames = math.ceil(n_samples / HOP_LEN)
    out_len = smeared_length(n_samples)
    if n_frames == 0:
        return np.zeros(out_len)
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "clean":  # 3 more frames, so that every output block gets all 4 overlaps
        n_frames += N_OVERLAP - 1
    # The analysed stream (see Notes), zero-padded to cover all frames.
    stream = np.zeros((n_frames + N_OVERLAP - 1) * HOP_LEN)
    if framing == "pyclarity":
        head = signal[:FRAME_LEN]
        stream[: len(head)] = head
        tail = signal[HOP_LEN:]
        stream[FRAME_LEN : FRAME_LEN + len(tail)] = tail
    else:
        lead = FRAME_LEN - HOP_LEN
        stream[lead : lead + n_samples] = signal
    blocks = stream.reshape(-1, HOP_LEN)
    frames = np.lib.stride_tricks.sliding_window_view(blocks, N_OVERLAP, axis=0)  # (K, 64, 4)
    frames = frames.transpose(0, 2, 1).reshape(n_frames, FRAME_LEN)
    window = frame_window()
    full_spectrum = np.fft.rfft(frames * window, FFT_SIZE, axis=1)
    spectrum = full_spectrum[:, :N_BINS]
    magnitude = np.abs(spectrum)
    dtype = np.dtype(SMEAR_DTYPE)
    # One matrix product for all frames: smeared power [shape=(n_frames, 256)].
    smeared_power = np.square(magnitude, dtype=dtype) @ smear_matrix.astype(dtype, copy=False).T
    new_spectrum = np.empty((n_frames, N_BINS + 1), dtype=np.result_type(dtype, np.complex64))
    if _kernels.AVAILABLE:
        _kernels.smear_rescale(spectrum, magnitude, smeared_power, new_spectrum)
    else:
        _rescale(spectrum, magnitude, smeared_power, new_spectrum)
    # irfft in the type of new_spectrum (numpy >= 2 computes complex64 in float32)
    frames_out = np.fft.irfft(new_spectrum, FFT_SIZE, axis=1)[:, :FRAME_LEN] * window
    # Overlap-add: frame k lands on hop blocks k ... k + 3 (4 shifted adds, same order as smear3).
    segments = frames_out.reshape(n_frames, N_OVERLAP, HOP_LEN)
    out = np.zeros((n_frames + N_OVERLAP - 1, HOP_LEN))
    if framing == "clean":
        for offset in range(N_OVERLAP):
            out[offset : offset + n_frames] += segments[:, offset]
        return out.reshape(-1)[:out_len]
    for offset in range(N_OVERLAP):
        out[offset:n_frames] += segments[: n_frames - offset, offset]
    # Tail flush (see Notes): block K + t = F[K-4][t] + sum_{m<3-t} F[K-1-m][t+1+m].
    stale = segments[n_frames - N_OVERLAP] if n_frames >= N_OVERLAP else np.zeros_like(segments[0])
    for t in range(N_OVERLAP - 1):
        block = np.zeros(HOP_LEN) + stale[t]
        for m in range(N_OVERLAP - 2 - t):
            if n_frames - 1 - m >= 0:
                block += segments[n_frames - 1 - m, t + 1 + m]
        out[n_frames + t] = block
    return out.reshape(-1)[:out_len]


def _rescale(
    spectrum: np.ndarray, magnitude: np.ndarray, smeared_power: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """New spectrum into ``out`` [shape=(n_frames, 257)]: magnitude sqrt(|p|), phase kept
    (numpy path of :func:`msbg._kernels.smear_rescale`).

    The phasor is X / |X| (|X| = 0 -> divide by 1) computed as X * (1 / |X|) per real and
    imaginary part: the same numbers as numpy's complex / real division in pyclarity, cheaper.
    """
    inv_magnitude = 1.0 / (magnitude + (magnitude == 0))
    root = np.sqrt(np.abs(smeared_power.astype(np.float64)))
    real = root * (spectrum.real * inv_magnitude)
    imag = root * (spectrum.imag * inv_magnitude)
    # Negative smeared power: sqrt gives i * sqrt(|p|), i.e. the phasor turned by +90 degrees.
    negative = smeared_power < 0
    out.real[:, :N_BINS] = np.where(negative, -imag, real)
    out.imag[:, :N_BINS] = np.where(negative, real, imag)
    out[:, N_BINS] = 0.0
    return out
