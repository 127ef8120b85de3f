"""Offline degradations of the stand-in's training speech: noise, hearing-aid-like processing, MSBG.

What fine-tuning and inference feed the ASR in E032 is a hearing-aid output passed through the MSBG
hearing-loss simulation: speech in noise, amplified, filtered, compressed or clipped by the aid, then
attenuated, smeared and recruited by the simulated impaired ear. :func:`degrade` draws one such chain
per utterance:

1. speech at a random level (``SPEECH_LEVEL_DB_SPL``), in MSBG's calibration (0 dBFS = 120 dB SPL);
2. with a short noise lead-in and tail, noise of a random kind (speech-shaped, babble, pink, white)
   at a random SNR (``SNR_DB``);
3. a random hearing-aid-like process (none, equaliser gain, broadband compression, peak clipping,
   low-pass), then an output limit of ``MAX_OUTPUT_DB_SPL`` RMS;
4. MSBG with a random audiogram from normal hearing to severe loss (:func:`random_audiogram`).

All draws come from the ``np.random.Generator`` passed in, so a seed fixes the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, firwin2, oaconvolve, sosfilt

from msbg import Ear
from msbg.audiogram import audiogram_from_levels
from msbg.levels import speech_shaped_noise
from msbg.tables import CLARITY_AUDIOGRAM_HZ, MSBG_SAMPLE_RATE

SAMPLE_RATE: Final[int] = MSBG_SAMPLE_RATE  # Hz; MSBG runs at 44.1 kHz
FULL_SCALE_DB_SPL: Final[float] = 120.0  # E032's MSBG calibration: equiv_0db_spl 100 + ahr 20
SPEECH_LEVEL_DB_SPL: Final[tuple[float, float]] = (60.0, 95.0)
SNR_DB: Final[tuple[float, float]] = (-5.0, 25.0)
NOISE_KINDS: Final[tuple[str, ...]] = ("speech_shaped", "babble", "pink", "white", "none")
NOISE_KIND_PROBABILITIES: Final[tuple[float, ...]] = (0.3, 0.3, 0.15, 0.1, 0.15)
LEAD_S: Final[tuple[float, float]] = (0.0, 0.5)  # noise before the speech
TAIL_S: Final[tuple[float, float]] = (0.2, 1.0)  # noise after the speech (CPC1 scenes have 1 s)
BABBLE_TALKERS: Final[tuple[int, int]] = (2, 6)
HA_PROCESSES: Final[tuple[str, ...]] = ("none", "equaliser", "compressor", "clipper", "lowpass")
HA_PROCESS_PROBABILITIES: Final[tuple[float, ...]] = (0.2, 0.35, 0.2, 0.15, 0.1)
EQ_BAND_HZ: Final[tuple[float, ...]] = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
EQ_GAIN_DB: Final[tuple[float, float]] = (-5.0, 30.0)  # per band; higher bands get more on average
EQ_TAPS: Final[int] = 513
COMPRESSION_RATIO: Final[tuple[float, float]] = (1.5, 4.0)
COMPRESSION_TAU_S: Final[float] = 0.01
COMPRESSION_MAX_GAIN_DB: Final[float] = 20.0  # most a compressor lifts quiet parts
CLIP_X_RMS: Final[tuple[float, float]] = (1.0, 3.0)  # clipping level, multiples of the RMS
LOWPASS_HZ: Final[tuple[float, float]] = (1500.0, 6000.0)
MAX_OUTPUT_DB_SPL: Final[float] = 110.0  # a hearing aid's maximum RMS output
NOISE_FLOOR_DB_SPL: Final[float] = 0.0  # white noise added before MSBG (no digital silence)
#: audiogram shape: a flat part plus a high-frequency slope reaching its full size at 8 kHz
FLAT_LOSS_DB_HL: Final[tuple[float, float]] = (0.0, 55.0)
SLOPE_LOSS_DB_HL: Final[tuple[float, float]] = (0.0, 45.0)
MAX_LEVEL_DB_HL: Final[float] = 100.0
#: the model card's named hearing losses (dB HL at 250, 500, 1000, 2000, 3000, 4000, 6000, 8000 Hz)
NAMED_AUDIOGRAMS: Final[dict[str, tuple[float, ...]]] = {
    "mild": (20, 20, 25, 30, 35, 40, 45, 45),
    "moderate": (35, 40, 45, 50, 55, 60, 65, 65),
    "severe": (60, 65, 70, 75, 80, 85, 90, 90),
}


def db_to_gain(level_db: float) -> float:
    """Amplitude factor of a level in dB."""
    return float(10.0 ** (level_db / 20.0))


def rms(signal: npt.NDArray[np.float64]) -> float:
    """Root mean square (0 for an empty or silent signal)."""
    return float(np.sqrt(np.mean(signal**2))) if signal.size else 0.0


def random_audiogram(rng: np.random.Generator) -> tuple[float, ...]:
    """Levels (dB HL) at the 8 Clarity frequencies: flat loss + high-frequency slope, 5-dB steps.

    Examples
    --------
    >>> levels = random_audiogram(np.random.default_rng(0))
    >>> len(levels), all(0 <= v <= MAX_LEVEL_DB_HL and v % 5 == 0 for v in levels)
    (8, True)
    """
    octaves_above_500 = np.clip(np.log2(np.asarray(CLARITY_AUDIOGRAM_HZ, dtype=float) / 500.0), 0.0, None)
    shape = octaves_above_500 / octaves_above_500.max()
    levels = rng.uniform(*FLAT_LOSS_DB_HL) + rng.uniform(*SLOPE_LOSS_DB_HL) * shape
    return tuple(float(v) for v in np.clip(5.0 * np.round(levels / 5.0), 0.0, MAX_LEVEL_DB_HL))


def pink_noise(n_samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Gaussian noise with a 1/f power spectrum (-3 dB/octave), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.arange(spectrum.size, dtype=float)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=n_samples)
    return noise / max(rms(noise), 1e-20)


def make_noise(
    kind: str, n_samples: int, babble_pool: Sequence[npt.NDArray[np.float64]], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Unit-RMS noise of ``kind`` (babble: a sum of random pool utterances at random offsets)."""
    if kind == "speech_shaped":
        return speech_shaped_noise(n_samples / SAMPLE_RATE + 1.0, SAMPLE_RATE, 0.0, rng)[:n_samples]
    if kind == "pink":
        return pink_noise(n_samples, rng)
    if kind == "white":
        return rng.standard_normal(n_samples)
    if kind != "babble":
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS[:-1]}")
    out = np.zeros(n_samples)
    for index in rng.choice(len(babble_pool), size=int(rng.integers(*BABBLE_TALKERS, endpoint=True))):
        talker = np.resize(babble_pool[index], n_samples + SAMPLE_RATE)  # repeated to cover the span
        start = int(rng.integers(0, SAMPLE_RATE))
        out += talker[start : start + n_samples] / max(rms(babble_pool[index]), 1e-20)
    return out / max(rms(out), 1e-20)


def hearing_aid_like(
    signal: npt.NDArray[np.float64], process: str, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Apply one hearing-aid-like ``process`` (see :data:`HA_PROCESSES`) with random settings."""
    if process == "none":
        return signal
    if process == "equaliser":
        tilt = np.linspace(0.0, 1.0, len(EQ_BAND_HZ))  # higher bands get more gain, as in a fitting
        gains_db = rng.uniform(*EQ_GAIN_DB, size=len(EQ_BAND_HZ)) * (0.4 + 0.6 * tilt)
        freqs = np.concatenate(([0.0], EQ_BAND_HZ, [SAMPLE_RATE / 2]))
        gains = 10.0 ** (np.concatenate((gains_db[:1], gains_db, gains_db[-1:])) / 20.0)
        taps = firwin2(EQ_TAPS, freqs, gains, fs=SAMPLE_RATE)
        return oaconvolve(signal, taps)[EQ_TAPS // 2 : EQ_TAPS // 2 + len(signal)]
    if process == "compressor":
        smooth = np.exp(-1.0 / (COMPRESSION_TAU_S * SAMPLE_RATE))
        envelope = np.sqrt(sosfilt(np.array([[1 - smooth, 0, 0, 1, -smooth, 0]]), signal**2).clip(1e-20))
        reference = rms(signal)
        # gain (env / ref)^(1/ratio - 1): cut above the RMS, boost below it, boost capped (silence)
        gain = (envelope / reference) ** (1.0 / rng.uniform(*COMPRESSION_RATIO) - 1.0)
        return signal * np.minimum(gain, db_to_gain(COMPRESSION_MAX_GAIN_DB))
    if process == "clipper":
        limit = rng.uniform(*CLIP_X_RMS) * rms(signal)
        return np.clip(signal, -limit, limit)
    if process == "lowpass":
        sos = butter(6, rng.uniform(*LOWPASS_HZ), fs=SAMPLE_RATE, output="sos")
        return sosfilt(sos, signal)
    raise ValueError(f"unknown process {process!r}; expected one of {HA_PROCESSES}")


def limit_output(
    signal: npt.NDArray[np.float64], max_db_spl: float = MAX_OUTPUT_DB_SPL
) -> npt.NDArray[np.float64]:
    """Scale down a signal whose RMS exceeds ``max_db_spl`` (0 dBFS = :data:`FULL_SCALE_DB_SPL`)."""
    limit = db_to_gain(max_db_spl - FULL_SCALE_DB_SPL)
    level = rms(signal)
    return signal * (limit / level) if level > limit else signal


def mix(
    speech: npt.NDArray[np.float64],
    noise_kind: str,
    snr_db: float,
    babble_pool: Sequence[npt.NDArray[np.float64]],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Speech with a noise lead-in and tail, plus noise at ``snr_db`` (``"none"``: silence around it)."""
    lead, tail = (int(rng.uniform(*span) * SAMPLE_RATE) for span in (LEAD_S, TAIL_S))
    padded = np.concatenate((np.zeros(lead), speech, np.zeros(tail)))
    if noise_kind == "none":
        return padded
    noise = make_noise(noise_kind, len(padded), babble_pool, rng)
    return padded + noise * rms(speech) * db_to_gain(-snr_db)


def simulate_ear(
    signal: npt.NDArray[np.float64], levels_db_hl: Sequence[float], ear: Ear
) -> npt.NDArray[np.float64]:
    """MSBG output of ``signal`` for an ear with the given audiogram (E032's ``MSBGEar`` settings)."""
    ear.set_audiogram(audiogram_from_levels(levels_db_hl))
    # A recording never holds digital silence; MSBG's recruitment stage returns NaN on exact-zero
    # stretches that a steep low-pass leaves in some channels, so a noise floor is added first.
    floor = np.random.default_rng(len(signal)).standard_normal(len(signal))
    signal = signal + floor * db_to_gain(NOISE_FLOOR_DB_SPL - FULL_SCALE_DB_SPL)
    return ear.process(signal)[0]


def degrade(
    speech: npt.NDArray[np.float64],
    babble_pool: Sequence[npt.NDArray[np.float64]],
    rng: np.random.Generator,
    ear: Ear,
) -> tuple[npt.NDArray[np.float64], dict]:
    """One random degradation chain (module docstring) of 44.1 kHz ``speech``; returns (signal, settings).

    Parameters
    ----------
    speech : clean speech, any level [shape=(n_samples,)], 44.1 kHz.
    babble_pool : 44.1 kHz utterances of other talkers for babble.
    rng : the only source of randomness.
    ear : an ``msbg.Ear`` with E032's settings (reused: its filter designs are cached).

    Returns
    -------
    signal : MSBG output [shape=(n_out,)], 44.1 kHz, in MSBG's calibration.
    settings : what was drawn (level, noise kind, SNR, process, audiogram), for the corpus CSV.
    """
    level_db_spl = float(rng.uniform(*SPEECH_LEVEL_DB_SPL))
    speech = speech * db_to_gain(level_db_spl - FULL_SCALE_DB_SPL) / max(rms(speech), 1e-20)
    noise_kind = str(rng.choice(NOISE_KINDS, p=NOISE_KIND_PROBABILITIES))
    snr_db = float(rng.uniform(*SNR_DB))
    process = str(rng.choice(HA_PROCESSES, p=HA_PROCESS_PROBABILITIES))
    levels = random_audiogram(rng)
    aided = limit_output(hearing_aid_like(mix(speech, noise_kind, snr_db, babble_pool, rng), process, rng))
    settings = {
        "level_db_spl": round(level_db_spl, 1),
        "noise": noise_kind,
        "snr_db": round(snr_db, 1),
        "process": process,
        "audiogram": list(levels),
    }
    return simulate_ear(aided, levels, ear), settings
