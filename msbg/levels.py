"""Presentation level: active-speech RMS normalisation and the optional calibration prefix.

MSBG interprets digital full scale as a sound pressure level: an RMS of 1.0 (0 dBFS) is
``equiv_0db_spl + ahr`` dB SPL (120 dB SPL in E032). Before simulation the signal is rescaled so
that its *active* RMS (the RMS over 10 ms frames no more than 12 dB below the overall RMS) equals
its overall RMS; pauses therefore lower the level by a few dB. There is no fixed presentation
level: the file's own digital level decides audibility.

References
----------
.. [1] M. A. Stone, MATLAB ``measure_rms.m`` / ``generate_key_percent.m`` (MSBG), ported in
   pyclarity ``msbg_utils.measure_rms``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.signal

from msbg.ear_filters import fir2_design
from msbg.tables import EMPHASIS_DB, GEN_NOISE_HZ, RMS_FRAME_S

#: How far (dB) below the overall RMS a frame may be and still count as active.
ACTIVE_THRESHOLD_REL_DB = -12.0
#: Lowest absolute activity threshold (dBFS).
ACTIVE_THRESHOLD_FLOOR_DB = -80.0


def active_rms(
    signal: npt.NDArray[np.float64],
    sample_rate: int,
    threshold_rel_db: float = ACTIVE_THRESHOLD_REL_DB,
) -> tuple[float, npt.NDArray[np.bool_]]:
    """RMS over the active 10 ms frames of ``signal`` (pyclarity ``measure_rms``, fixed threshold).

    Parameters
    ----------
    signal : ndarray [shape=(n_samples,)]
        Mono signal, full scale 1.0.
    sample_rate : int
        Hz; frames are ``round(0.01 * sample_rate)`` samples, the trailing partial frame ignored.
    threshold_rel_db : float
        Frames whose level is at least ``max(overall_db + threshold_rel_db, -80)`` dB count.

    Returns
    -------
    rms : float
        RMS of the active frames (nan if no frame is active, as in pyclarity).
    active_frames : ndarray of bool [shape=(n_frames,)]

    Examples
    --------
    >>> x = np.r_[np.zeros(4410), np.ones(4410)]
    >>> rms, active = active_rms(x, 44100)
    >>> float(rms), int(active.sum())
    (1.0, 10)
    """
    frame_len = round(RMS_FRAME_S * sample_rate)
    n_frames = len(signal) // frame_len
    first_stage_rms = np.sqrt(np.sum(np.power(signal, 2) / len(signal)))
    with np.errstate(divide="ignore"):
        threshold_db = max(20 * np.log10(first_stage_rms) + threshold_rel_db, ACTIVE_THRESHOLD_FLOOR_DB)
    # The floor keeps log10 finite for silent frames (pyclarity ``non_zero``).
    floor = np.power(10, (threshold_db - 30) / 10)
    frames = signal[: n_frames * frame_len].reshape(n_frames, frame_len)
    frame_db = 10 * np.log10(floor + np.sum(np.power(frames, 2), axis=1) / frame_len)
    active_frames = frame_db >= threshold_db
    kept = frames[active_frames].ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.sum(np.power(kept, 2)) / len(kept))
    return float(rms), active_frames


def normalise_level(signal: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    """Rescale ``signal`` so that its active RMS equals its overall RMS (pyclarity ``Ear.process``).

    Parameters
    ----------
    signal : ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        Full scale 1.0. For several channels, one gain for all (:func:`level_gain`).

    Returns
    -------
    ndarray, same shape
        An all-zero signal is returned unchanged (pyclarity would produce NaN).

    Raises
    ------
    ValueError
        If the signal is shorter than one 10 ms frame, or no frame reaches the activity
        threshold (pyclarity would silently return NaN in both cases).
    """
    return signal * level_gain(np.atleast_2d(signal), sample_rate)


def level_gain(channels: npt.NDArray[np.float64], sample_rate: int) -> float:
    """The gain of the level normalisation (pyclarity ``Ear.process``), as a factor.

    The target is the overall level of all channels together; the active RMS is measured on
    channel 0 only (pyclarity's rule for a multi-channel signal: one gain for all channels).

    Parameters
    ----------
    channels : ndarray [shape=(n_channels, n_samples)]
        Full scale 1.0.
    sample_rate : int
        Hz.

    Returns
    -------
    float
        ``10 ** (change_db / 20)``; 1.0 for an all-zero signal.

    Raises
    ------
    ValueError
        As :func:`normalise_level`.
    """
    if not np.any(channels):
        return 1.0
    frame_len = round(RMS_FRAME_S * sample_rate)
    if channels.shape[-1] < frame_len:
        raise ValueError(
            f"signal has {channels.shape[-1]} samples; MSBG needs at least one 10 ms frame "
            f"({frame_len} samples) to measure its level"
        )
    level_db = 10 * np.log10(np.mean(channels**2))
    rms, active_frames = active_rms(channels[0], sample_rate)
    if not np.any(active_frames):
        which = " in channel 0 (which sets the level of all channels)" if len(channels) > 1 else ""
        raise ValueError(
            f"signal too quiet{which}: no 10 ms frame reaches the -80 dBFS activity threshold "
            f"of the level measurement (overall level {level_db:.1f} dBFS)"
        )
    # pyclarity: change_db = target_spl - (equiv_0db_spl + 20 log10(rms)), target = equiv + level
    change_db = level_db - 20 * np.log10(rms)
    return float(np.power(10, 0.05 * change_db))


def tone(
    frequency_hz: float, duration_s: float, sample_rate: int, level_db: float
) -> npt.NDArray[np.float64]:
    """Sine of RMS ``level_db`` dBFS (peak factor 1.4142, as pyclarity ``gen_tone``)."""
    t = np.arange(1, duration_s * sample_rate + 1) / sample_rate
    return 1.4142 * np.power(10, 0.05 * level_db) * np.sin(2 * np.pi * frequency_hz * t)


def speech_shaped_noise(
    duration_s: float, sample_rate: int, level_db: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Speech-shaped noise (Moore et al. 2008 shape, -7.5 dB/octave) at ``level_db`` dBFS RMS.

    Follows pyclarity ``gen_eh2008_speech_noise`` (FIR shaping, 3rd-order elliptic 100 Hz
    high-pass applied forwards and backwards, FIR delay removed) but draws its white noise from
    ``rng`` instead of the global numpy generator.
    """
    n_samples = int(duration_s * sample_rate)
    norm_freq = GEN_NOISE_HZ / (sample_rate / 2)
    last = int(np.max(np.where(norm_freq < 1)))
    norm_freq = np.append(norm_freq[: last + 1], 1)
    emph_nyquist_db = EMPHASIS_DB[last] + 9 * np.log10(norm_freq[last]) / np.log10(2)
    gains = np.exp(np.log(10) * np.append(EMPHASIS_DB[: last + 1], emph_nyquist_db) / 20)
    n_taps = int(2 * np.ceil(10 * (sample_rate / 2000))) + 1
    b = fir2_design(n_taps, tuple(norm_freq), tuple(gains), window="hamming")
    white = rng.random(n_samples + len(b)) - 0.5
    noise = scipy.signal.lfilter(b, 1, white)
    hp_b, hp_a = scipy.signal.ellip(3, 0.1, 50, 100 / (sample_rate / 2), "high")
    noise = scipy.signal.filtfilt(hp_b, hp_a, noise, padlen=3 * (max(len(hp_a), len(hp_b)) - 1))
    shift = len(b) // 2  # advance by the FIR delay
    noise = noise[shift : shift + n_samples]
    return noise * np.power(10, 0.05 * level_db) / np.sqrt(np.mean(noise**2))


def calibration_signals(
    level_db: float, sample_rate: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Calibration prefix and suffix (pyclarity ``Ear.make_calibration_signal``).

    Prefix: 50 ms silence, 0.5 s 520 Hz tone, 50 ms silence, 2 s speech-shaped noise, 50 ms
    silence, all at ``level_db`` dBFS RMS. Suffix: 50 ms silence.
    """
    silence = np.zeros(int(0.05 * sample_rate))
    prefix = np.concatenate(
        (
            silence,
            tone(520, 0.5, sample_rate, level_db),
            silence,
            speech_shaped_noise(2.0, sample_rate, level_db, rng),
            silence,
        )
    )
    return prefix, silence.copy()


__all__ = [
    "active_rms",
    "level_gain",
    "normalise_level",
    "calibration_signals",
    "speech_shaped_noise",
    "tone",
]
