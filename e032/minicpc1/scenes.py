"""Binaural scenes: a TTS target sentence in speech-shaped noise or multi-talker babble.

Timing follows CEC1/CPC1: the interferer starts ``LEAD_S`` = 2 s before the target speech and ends
``TAIL_S`` = 1 s after it. Each source (mono) is placed at an azimuth with a simple spherical-head
model: an interaural time difference from Woodworth's formula (integer samples at 44.1 kHz) and a
frequency-dependent level difference from the one-pole/one-zero head-shadow filter of Brown & Duda
(1998). Levels are absolute: 0 dBFS RMS = 120 dB SPL, the calibration MSBG uses downstream. Under it,
real CPC1 signals are loud (the real sample's reference is at -21 dBFS = 99 dB SPL, its hearing-aid
output at -23 / -27 dBFS), and the presets follow them (target speech 80-95 dB SPL at the ear).

Definitions (stored in the latent file):

* ``speech_level_db_spl``: RMS of the trimmed mono TTS target, before the head model.
* ``snr_db``: speech-weighted SNR: RMS of the mono target over RMS of the mono interferer (the sum of
  the babble talkers) during the target's span, both after a 400-4000 Hz band-pass (2nd-order
  Butterworth) that stands for the bands that matter most to intelligibility. Without it the TTS
  voices, whose long-term spectra differ a lot (flite: strong below 350 Hz), would differ by ~8 dB
  in effective SNR at the same broadband SNR.

References
----------
C. P. Brown and R. O. Duda, "A structural model for binaural sound synthesis", IEEE Trans. Speech
Audio Process. 6(5), 1998. R. S. Woodworth, Experimental Psychology, 1938.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import bilinear, butter, lfilter, sosfilt, welch

SAMPLE_RATE: Final[int] = 44100  # Hz, CPC1 audio
LEAD_S: Final[float] = 2.0  # interferer-only lead before the target (CEC1 convention)
TAIL_S: Final[float] = 1.0  # interferer-only tail after the target
DB_SPL_AT_0_DBFS: Final[float] = 120.0  # MSBG calibration (equiv_0db_spl 100 + ahr 20)
HEAD_RADIUS_M: Final[float] = 0.0875
SPEED_OF_SOUND_M_S: Final[float] = 343.0
SHADOW_ALPHA_MIN: Final[float] = 0.1  # Brown & Duda (1998) head-shadow parameters
SHADOW_THETA_MIN_DEG: Final[float] = 150.0
EAR_AZIMUTH_DEG: Final[tuple[float, float]] = (-90.0, 90.0)  # left, right; positive azimuth = right
LTASS_NPERSEG: Final[int] = 2048
SNR_WEIGHTING_BAND_HZ: Final[tuple[float, float]] = (400.0, 4000.0)
_SNR_WEIGHTING_SOS: Final = butter(2, SNR_WEIGHTING_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE, output="sos")


@dataclass(frozen=True)
class BabbleTalker:
    """One babble talker: sentences (spoken back to back, looped) with one voice, at one azimuth."""

    sentences: tuple[str, ...]
    voice: str
    azimuth_deg: float


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines one scene (all drawn in the main process, so order never matters)."""

    scene: str
    sentence: str
    voice: str
    target_azimuth_deg: float
    interferer_kind: str  # "ssn" | "babble"
    interferer_azimuth_deg: float
    snr_db: float
    speech_level_db_spl: float
    babble: tuple[BabbleTalker, ...] = field(default=())


@dataclass(frozen=True)
class SceneAudio:
    """The ear signals [shape=(n_samples, 2)] of target and interferer, and the target span (samples)."""

    target: npt.NDArray[np.float64]
    interferer: npt.NDArray[np.float64]
    onset: int
    offset: int

    @property
    def mixture(self) -> npt.NDArray[np.float64]:
        """Target plus interferer at the ears."""
        return self.target + self.interferer


def rms(signal: npt.NDArray[np.float64]) -> float:
    """Root mean square over all samples (and channels)."""
    return float(np.sqrt(np.mean(np.square(signal))))


def woodworth_itd_s(azimuth_deg: float) -> float:
    """Interaural time difference (s, positive = right ear leads) for a frontal azimuth in [-90, 90]."""
    theta = np.deg2rad(azimuth_deg)
    return float(HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (np.sin(theta) + theta))


def head_shadow(
    signal: npt.NDArray[np.float64], incidence_deg: float, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """Brown & Duda head-shadow filter for one ear.

    Parameters
    ----------
    signal : mono [shape=(n_samples,)].
    incidence_deg : angle between the source direction and the ear's axis, 0 ... 180 degrees.
    sample_rate : Hz.

    Returns
    -------
    The filtered signal (DC gain 1; up to +6 dB at high frequencies facing the ear, -20 dB behind).
    """
    alpha = (1 + SHADOW_ALPHA_MIN / 2) + (1 - SHADOW_ALPHA_MIN / 2) * np.cos(
        np.deg2rad(incidence_deg / SHADOW_THETA_MIN_DEG * 180.0)
    )
    beta = 2 * SPEED_OF_SOUND_M_S / HEAD_RADIUS_M  # rad/s: the model's corner (2 * omega_0)
    b, a = bilinear([alpha / beta, 1.0], [1.0 / beta, 1.0], fs=sample_rate)
    return lfilter(b, a, signal)


def spatialize(
    signal: npt.NDArray[np.float64], azimuth_deg: float, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """Place a mono source at ``azimuth_deg`` (-90 left ... 90 right): ITD plus head shadow.

    Returns
    -------
    Ear signals [shape=(n_samples, 2)] (left, right), same length as the input; the lagging ear is
    delayed by the rounded ITD.
    """
    delay = int(round(abs(woodworth_itd_s(azimuth_deg)) * sample_rate))
    ears = []
    for ear_azimuth in EAR_AZIMUTH_DEG:  # two ears: the one structural loop
        ear = head_shadow(signal, abs(azimuth_deg - ear_azimuth), sample_rate)
        lagging = (ear_azimuth < 0) == (azimuth_deg > 0)
        if lagging and delay:
            ear = np.concatenate([np.zeros(delay), ear[:-delay]])
        ears.append(ear)
    return np.stack(ears, axis=1)


def ltass(speech: list[npt.NDArray[np.float64]], sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """Long-term average power spectrum of mono speech signals (Welch), [shape=(LTASS_NPERSEG//2+1,)]."""
    psds = [welch(s, fs=sample_rate, nperseg=LTASS_NPERSEG)[1] * len(s) for s in speech]
    return np.sum(psds, axis=0) / sum(len(s) for s in speech)


def speech_shaped_noise(
    n_samples: int, psd: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Gaussian noise with the spectrum ``psd`` (from :func:`ltass`), unit RMS, [shape=(n_samples,)]."""
    n_fft = next_fast_len(n_samples, real=True)
    spectrum = rfft(rng.standard_normal(n_fft))
    grid = np.linspace(0.0, 1.0, len(psd))
    shape = np.sqrt(np.interp(np.linspace(0.0, 1.0, len(spectrum)), grid, psd))
    noise = irfft(spectrum * shape, n=n_fft)[:n_samples]
    return noise / rms(noise)


def _talker_stream(
    renders: list[npt.NDArray[np.float64]], n_samples: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Sentences back to back (50-300 ms gaps), looped, from a random start; unit RMS."""
    pieces = []
    for r in renders:
        pieces += [r, np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE))]
    loop = np.concatenate(pieces)
    n_loops = n_samples // len(loop) + 2
    stream = np.tile(loop, n_loops)
    start = int(rng.integers(len(loop)))
    stream = stream[start : start + n_samples]
    return stream / rms(stream)


def render_scene(
    spec: SceneSpec,
    target_speech: npt.NDArray[np.float64],
    babble_speech: dict[tuple[str, str], npt.NDArray[np.float64]],
    noise_psd: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> SceneAudio:
    """Mix one scene at the ears.

    Parameters
    ----------
    spec : the scene.
    target_speech : trimmed mono TTS of ``spec.sentence`` at 44.1 kHz.
    babble_speech : mono 44.1 kHz TTS keyed by (sentence, voice), for the babble talkers.
    noise_psd : LTASS for the speech-shaped noise.
    rng : generator for the noise and the babble start points.

    Returns
    -------
    SceneAudio with the target at ``spec.speech_level_db_spl`` and the interferer at ``spec.snr_db``.
    """
    onset = int(LEAD_S * SAMPLE_RATE)
    offset = onset + len(target_speech)
    n_samples = offset + int(TAIL_S * SAMPLE_RATE)
    target_rms = 10 ** ((spec.speech_level_db_spl - DB_SPL_AT_0_DBFS) / 20)
    target = np.zeros(n_samples)
    target[onset:offset] = target_speech * (target_rms / rms(target_speech))
    if spec.interferer_kind == "ssn":
        streams = speech_shaped_noise(n_samples, noise_psd, rng)[None, :]
        azimuths = [spec.interferer_azimuth_deg]
    elif spec.interferer_kind == "babble":
        streams = np.stack(
            [
                _talker_stream([babble_speech[(s, t.voice)] for s in t.sentences], n_samples, rng)
                for t in spec.babble
            ]
        )
        azimuths = [t.azimuth_deg for t in spec.babble]
    else:
        raise ValueError(f"interferer_kind must be 'ssn' or 'babble', got {spec.interferer_kind!r}")
    weighted_target_rms = rms(sosfilt(_SNR_WEIGHTING_SOS, target[onset:offset]))
    weighted_interferer_rms = rms(sosfilt(_SNR_WEIGHTING_SOS, streams.sum(axis=0)[onset:offset]))
    gain = weighted_target_rms / 10 ** (spec.snr_db / 20) / weighted_interferer_rms
    interferer = sum(spatialize(gain * s, az) for s, az in zip(streams, azimuths, strict=True))
    return SceneAudio(spatialize(target, spec.target_azimuth_deg), interferer, onset, offset)
