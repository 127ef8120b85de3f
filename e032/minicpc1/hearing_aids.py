"""Hearing-aid "systems" ``E###`` that turn the ear mixture into the HA output.

Every system returns the output *and* its split into a target part and a noise part (what the
synthetic listener model needs):

* linear or gain-controlled systems apply the same (possibly time-varying) gains to the mixture, the
  target and the interferer, so the parts are exact;
* a nonlinear system (clipping) projects the output on its linearly processed target; the rest
  (interferer plus distortion) is the noise part.

Systems
-------
``E001`` unprocessed; ``E002`` NAL-R linear fitting per ear (FIR); ``E003`` NAL-R-referenced 6-band
wide-dynamic-range compressor (STFT); ``E004`` degrading: 2 kHz low-pass plus hard peak clipping;
``E005`` oracle-SNR Wiener noise reduction followed by NAL-R.

Every system ends in an **output limit**, as a hearing aid's maximum power output does: an output whose
RMS (both ears, whole signal) exceeds ``MAX_OUTPUT_DB_SPL`` = 110 dB SPL (-10 dBFS in MSBG's calibration;
typical aids saturate at 110-125 dB SPL) is scaled down to it, and its target and noise parts with it.

References
----------
D. Byrne and H. Dillon, "The National Acoustic Laboratories' (NAL) new procedure for selecting the
gain and frequency response of a hearing aid", Ear and Hearing 7(4), 1986 (NAL-R formula).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import irfft, rfft
from scipy.signal import butter, firwin2, lfilter, oaconvolve, sosfilt

from e032.minicpc1.listeners import AUDIOGRAM_CFS
from e032.minicpc1.scenes import DB_SPL_AT_0_DBFS, SAMPLE_RATE

# NAL-R frequency-dependent constant k(f) in dB (Byrne & Dillon 1986), at AUDIOGRAM_CFS.
NALR_K_DB: Final[tuple[float, ...]] = (-17.0, -8.0, 1.0, -1.0, -2.0, -2.0, -2.0, -2.0)
NALR_FIR_TAPS: Final[int] = 513  # 5.8 ms group delay at 44.1 kHz
MAX_GAIN_DB: Final[float] = 50.0
STFT_NPERSEG: Final[int] = 512
STFT_HOP: Final[int] = 128
BAND_CFS_HZ: Final[tuple[float, ...]] = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
COMPRESSION_RATIO: Final[float] = 3.0
COMPRESSION_KNEE_DB_SPL: Final[float] = 40.0  # band level below which the compressor is linear
COMPRESSION_REF_DB_SPL: Final[float] = 55.0  # band level at which the gain equals NAL-R
COMPRESSION_TAU_S: Final[float] = 0.02
NR_FLOOR_DB: Final[float] = -12.0
NR_TAU_S: Final[float] = 0.03
DEGRADE_CUTOFF_HZ: Final[float] = 2000.0
DEGRADE_CLIP_X_RMS: Final[float] = 1.5  # clip at this multiple of the low-passed signal's RMS
MAX_OUTPUT_DB_SPL: Final[float] = 110.0  # RMS output limit (maximum power output), = -10 dBFS
HA_OUTPUT_TRIM_SAMPLES: Final[int] = 140  # processed outputs are shorter than the scene (as in CPC1)
_WINDOW: Final = np.hanning(STFT_NPERSEG + 1)[:-1]  # periodic Hann
_WINDOW_OLA: Final[float] = float(np.sum(_WINDOW**2) / STFT_HOP)  # sum of w^2 over overlapping frames (1.5)


Signal = npt.NDArray[np.float64]  # ear signals [shape=(n_samples, 2)]
Audiograms = Sequence[npt.NDArray[np.float64]]  # (left, right) levels in dB HL at AUDIOGRAM_CFS


@dataclass(frozen=True)
class SystemOutput:
    """HA output and its split, each [shape=(n_samples, 2)]."""

    output: npt.NDArray[np.float64]
    target: npt.NDArray[np.float64]
    noise: npt.NDArray[np.float64]
    delay_samples: int


def nalr_gains_db(levels_db_hl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """NAL-R insertion gains (dB, >= 0) at :data:`AUDIOGRAM_CFS` for one ear's audiogram.

    G(f) = 0.05 (H500 + H1000 + H2000) + 0.31 H(f) + k(f), negative gains set to 0, capped at
    ``MAX_GAIN_DB``.

    Examples
    --------
    >>> nalr_gains_db([0] * 8).tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    h = np.asarray(levels_db_hl, dtype=np.float64)
    x = 0.05 * (h[1] + h[2] + h[3])
    return np.clip(x + 0.31 * h + np.array(NALR_K_DB), 0.0, MAX_GAIN_DB)


def _gain_at(freqs_hz: npt.NDArray[np.float64], gains_db: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Interpolate audiogram-frequency gains (dB) on a log-frequency axis, flat beyond the ends."""
    log_f = np.log2(np.maximum(freqs_hz, 1.0))
    return np.interp(log_f, np.log2(AUDIOGRAM_CFS), gains_db)


def nalr_fir(levels_db_hl: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """Linear-phase FIR [shape=(NALR_FIR_TAPS,)] realising the NAL-R gains (0 dB above 12 kHz)."""
    freqs = np.array([0.0, 125.0, *AUDIOGRAM_CFS, 10000.0, 12000.0, sample_rate / 2])
    gains_db = _gain_at(freqs, nalr_gains_db(levels_db_hl))
    gains_db[-2:] = 0.0
    return firwin2(NALR_FIR_TAPS, freqs, 10 ** (gains_db / 20), fs=sample_rate)


def _fir_per_ear(
    signal: npt.NDArray[np.float64], firs: list[npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64]:
    n = signal.shape[0]
    return np.stack([oaconvolve(signal[:, e], firs[e])[:n] for e in range(2)], axis=1)


def _stft(signal: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
    """STFT of ear signals [shape=(n_samples, 2)] -> [shape=(2, n_frames, n_bins)] (periodic Hann, 75 %).

    The signal is padded with ``STFT_NPERSEG - STFT_HOP`` zeros in front so that every sample is
    covered by the same number of frames (exact overlap-add reconstruction in :func:`_istft`).
    """
    n = signal.shape[0]
    pad_front = STFT_NPERSEG - STFT_HOP
    n_frames = -(-(n + pad_front) // STFT_HOP)
    padded = np.zeros((2, (n_frames - 1) * STFT_HOP + STFT_NPERSEG))
    padded[:, pad_front : pad_front + n] = signal.T
    frames = sliding_window_view(padded, STFT_NPERSEG, axis=-1)[:, ::STFT_HOP]
    return rfft(frames * _WINDOW, axis=-1)


def _istft(spec: npt.NDArray[np.complex128], n_samples: int) -> npt.NDArray[np.float64]:
    """Weighted overlap-add inverse of :func:`_stft` -> [shape=(n_samples, 2)]."""
    n_frames = spec.shape[1]
    overlap = STFT_NPERSEG // STFT_HOP
    frames = irfft(spec, n=STFT_NPERSEG, axis=-1) * (_WINDOW / _WINDOW_OLA)
    frames = frames.reshape(2, n_frames, overlap, STFT_HOP)
    out = np.zeros((2, n_frames + overlap - 1, STFT_HOP))
    for j in range(overlap):  # 4 overlapping frame phases: structural loop
        out[:, j : j + n_frames] += frames[:, :, j]
    pad_front = STFT_NPERSEG - STFT_HOP
    return out.reshape(2, -1)[:, pad_front : pad_front + n_samples].T


def _band_matrix(n_bins: int, sample_rate: int) -> npt.NDArray[np.float64]:
    """Octave-band membership of STFT bins [shape=(n_bands, n_bins)]."""
    freqs = np.linspace(0.0, sample_rate / 2, n_bins)
    cfs = np.array(BAND_CFS_HZ)
    lower = np.concatenate([[0.0], cfs[:-1] * np.sqrt(2)])
    upper = np.concatenate([cfs[:-1] * np.sqrt(2), [sample_rate / 2 + 1]])
    return ((freqs[None, :] >= lower[:, None]) & (freqs[None, :] < upper[:, None])).astype(np.float64)


def _band_to_bin_interp(n_bins: int, sample_rate: int) -> npt.NDArray[np.float64]:
    """Weights [shape=(n_bands, n_bins)] interpolating band values to bins on a log-frequency axis."""
    log_f = np.log2(np.maximum(np.linspace(0.0, sample_rate / 2, n_bins), 1.0))
    eye = np.eye(len(BAND_CFS_HZ))
    return np.stack([np.interp(log_f, np.log2(BAND_CFS_HZ), row) for row in eye])


def _smooth_frames(power: npt.NDArray[np.float64], tau_s: float) -> npt.NDArray[np.float64]:
    """One-pole smoothing along the frame axis (1) with time constant ``tau_s``."""
    a = np.exp(-STFT_HOP / (tau_s * SAMPLE_RATE))
    return lfilter([1 - a], [1, -a], power, axis=1)


def _linear_output(
    target: npt.NDArray[np.float64], noise: npt.NDArray[np.float64], delay: int
) -> SystemOutput:
    """Output of a system that is linear once its gains are fixed: the sum of the processed parts."""
    return SystemOutput(target + noise, target, noise, delay)


def unprocessed(target: Signal, noise: Signal, audiograms: Audiograms) -> SystemOutput:
    """E001: the ear signals as they are."""
    return _linear_output(target.copy(), noise.copy(), 0)


def nalr(target: Signal, noise: Signal, audiograms: Audiograms) -> SystemOutput:
    """E002: per-ear NAL-R linear fitting (FIR, 256-sample delay)."""
    firs = [nalr_fir(a) for a in audiograms]
    return _linear_output(_fir_per_ear(target, firs), _fir_per_ear(noise, firs), NALR_FIR_TAPS // 2)


def compressor(target: Signal, noise: Signal, audiograms: Audiograms) -> SystemOutput:
    """E003: 6 octave-band WDRC (ratio 3, 20-ms smoothing) whose gain equals NAL-R at 55 dB SPL/band.

    Band levels come from the mixture; the resulting gains are applied to both parts.
    """
    spec_t, spec_n = _stft(target), _stft(noise)
    n_bins = spec_t.shape[-1]
    # one-sided band mean square of the mixture: 2 sum|X|^2 / (nperseg * sum(window^2))
    power = np.abs(spec_t + spec_n) ** 2 * (2.0 / (STFT_NPERSEG * np.sum(_WINDOW**2)))
    band_ms = power @ _band_matrix(n_bins, SAMPLE_RATE).T  # [shape=(2, n_frames, n_bands)]
    level_db = 10 * np.log10(_smooth_frames(band_ms, COMPRESSION_TAU_S) + 1e-20) + DB_SPL_AT_0_DBFS
    nalr_db = np.stack([_gain_at(np.array(BAND_CFS_HZ), nalr_gains_db(a)) for a in audiograms])
    slope = 1 - 1 / COMPRESSION_RATIO
    gain_db = nalr_db[:, None, :] + slope * (
        COMPRESSION_REF_DB_SPL - np.maximum(level_db, COMPRESSION_KNEE_DB_SPL)
    )
    gain_db = np.clip(gain_db, 0.0, MAX_GAIN_DB)
    gains = 10 ** ((gain_db @ _band_to_bin_interp(n_bins, SAMPLE_RATE)) / 20)
    n = target.shape[0]
    return _linear_output(_istft(spec_t * gains, n), _istft(spec_n * gains, n), 0)


def degrader(target: Signal, noise: Signal, audiograms: Audiograms) -> SystemOutput:
    """E004: 8th-order low-pass, broadband NAL-R 'X' gain, hard clipping at 1.5 x RMS.

    The target part is the least-squares share of the linearly processed target in the output; the
    noise part (interferer and distortion) is the rest.
    """
    sos = butter(8, DEGRADE_CUTOFF_HZ, fs=SAMPLE_RATE, output="sos")
    gain = np.array([10 ** (0.05 * (a[1] + a[2] + a[3]) / 20) for a in audiograms])
    low_target = sosfilt(sos, target, axis=0) * gain
    low_mix = low_target + sosfilt(sos, noise, axis=0) * gain
    clip_level = DEGRADE_CLIP_X_RMS * np.sqrt(np.mean(low_mix**2))
    output = np.clip(low_mix, -clip_level, clip_level)
    beta = np.sum(output * low_target, axis=0) / np.maximum(np.sum(low_target**2, axis=0), 1e-30)
    target_part = low_target * beta
    return SystemOutput(output, target_part, output - target_part, 0)


def noise_reduction(target: Signal, noise: Signal, audiograms: Audiograms) -> SystemOutput:
    """E005: Wiener gain from the (oracle) smoothed local SNR, floor -12 dB, then NAL-R."""
    spec_t, spec_n = _stft(target), _stft(noise)
    snr = _smooth_frames(np.abs(spec_t) ** 2, NR_TAU_S) / (
        _smooth_frames(np.abs(spec_n) ** 2, NR_TAU_S) + 1e-30
    )
    gain = np.maximum(snr / (1 + snr), 10 ** (NR_FLOOR_DB / 20))
    n = target.shape[0]
    return nalr(_istft(spec_t * gain, n), _istft(spec_n * gain, n), audiograms)


SYSTEMS: Final[dict[str, Callable[[Signal, Signal, Audiograms], SystemOutput]]] = {
    "E001": unprocessed,
    "E002": nalr,
    "E003": compressor,
    "E004": degrader,
    "E005": noise_reduction,
}
SYSTEM_DESCRIPTIONS: Final[dict[str, str]] = {
    "E001": "unprocessed",
    "E002": "NAL-R linear fitting",
    "E003": "6-band WDRC compressor (NAL-R at 55 dB SPL per band, ratio 3)",
    "E004": "degrading: 2 kHz low-pass and hard clipping",
    "E005": "oracle Wiener noise reduction + NAL-R",
}


def apply_system(
    system: str,
    target: npt.NDArray[np.float64],
    noise: npt.NDArray[np.float64],
    audiograms: tuple[npt.ArrayLike, npt.ArrayLike],
) -> SystemOutput:
    """Run hearing-aid ``system`` for a listener with (left, right) ``audiograms`` in dB HL.

    Parameters
    ----------
    system : a key of :data:`SYSTEMS`.
    target, noise : ear signals [shape=(n_samples, 2)]; the system's input is their sum.
    audiograms : left and right levels at :data:`AUDIOGRAM_CFS`.

    Raises
    ------
    KeyError
        For an unknown system.
    """
    if system not in SYSTEMS:
        raise KeyError(f"unknown hearing-aid system {system!r}; known: {sorted(SYSTEMS)}")
    return limit_output(SYSTEMS[system](target, noise, [np.asarray(a, dtype=np.float64) for a in audiograms]))


def limit_output(out: SystemOutput, max_db_spl: float = MAX_OUTPUT_DB_SPL) -> SystemOutput:
    """Scale ``out`` (output, target part and noise part alike) so its RMS is at most ``max_db_spl``."""
    max_rms = 10 ** ((max_db_spl - DB_SPL_AT_0_DBFS) / 20)
    level_rms = float(np.sqrt(np.mean(out.output**2)))
    if level_rms <= max_rms:
        return out
    scale = max_rms / level_rms
    return SystemOutput(out.output * scale, out.target * scale, out.noise * scale, out.delay_samples)
