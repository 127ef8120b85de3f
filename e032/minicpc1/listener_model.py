"""The synthetic listener: an SII-like band-audibility index, a logistic, and binomial word scoring.

This model makes the labels. It is deliberately independent of the recipe's predictor: it never
uses MSBG or an ASR, only octave-band levels of the target and noise parts of the HA output (see
:mod:`e032.minicpc1.hearing_aids`) against the listener's audiogram.

For each ear e and octave band b (250 ... 8000 Hz), over the target's span:

* S, N: band levels (dB SPL, 0 dBFS RMS = 120 dB SPL) of the target part and the noise part;
* T = HL(b) + ``THRESHOLD_REF_DB[b]``: the band level at which speech starts to be audible;
* D = 10 log10(10^(N/10) + 10^(T/10)): the effective masker (noise and threshold, power sum);
* A = clip((S - D + 15) / 30, 0, 1): band audibility (speech dynamic range 30 dB, as in the SII);
* Q = 1 - 0.4 clip((HL - 30) / 60, 0, 1): supra-threshold desensitisation for larger losses.

Index I = sum_b w_b max_e(A Q) (better ear per band), with octave-band importance weights w_b.
Probability of a word being heard: p = 1 / (1 + exp(-(I - I50 - offset_listener) / SLOPE)).
``hits`` ~ Binomial(n_words, p); the response keeps the hit words, drops or replaces the others.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.fft import next_fast_len, rfft

from e032.minicpc1.listeners import AUDIOGRAM_CFS
from e032.minicpc1.scenes import DB_SPL_AT_0_DBFS, SAMPLE_RATE

BAND_CFS_HZ: Final[tuple[float, ...]] = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
# Octave-band importance for average speech (ANSI S3.5-1997 octave-band procedure; sums to 1).
BAND_IMPORTANCE: Final[tuple[float, ...]] = (0.0617, 0.1671, 0.2373, 0.2648, 0.2142, 0.0549)
# Octave-band speech level (dB SPL) that a normal-hearing ear just starts to use: roughly the
# free-field tone threshold plus ~10 dB for an octave band wider than an auditory filter.
THRESHOLD_REF_DB: Final[tuple[float, ...]] = (22.0, 15.0, 12.0, 10.0, 8.0, 22.0)
SPEECH_RANGE_DB: Final[float] = 30.0
DESENSITISATION_MAX: Final[float] = 0.4
I50: Final[float] = 0.28
SLOPE: Final[float] = 0.06


def band_levels_db_spl(
    signal: npt.NDArray[np.float64], sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    """Octave-band levels (dB SPL) per ear [shape=(2, 6)] of ear signals [shape=(n_samples, 2)].

    The band mean squares add up to the signal's mean square (Parseval, one-sided spectrum).
    """
    n = signal.shape[0]
    n_fft = next_fast_len(n, real=True)  # zero padding keeps the sum of |X|^2 / n_fft equal to sum x^2
    power = np.abs(rfft(signal, n=n_fft, axis=0)) ** 2 / (n_fft * n)
    power[1:] *= 2  # one-sided
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    cfs = np.array(BAND_CFS_HZ)
    lower = np.concatenate([[0.0], cfs[:-1] * np.sqrt(2)])
    upper = np.concatenate([cfs[:-1] * np.sqrt(2), [sample_rate]])
    member = (freqs[None, :] >= lower[:, None]) & (freqs[None, :] < upper[:, None])
    band_ms = member.astype(np.float64) @ power  # [shape=(6, 2)]
    return 10 * np.log10(band_ms.T + 1e-20) + DB_SPL_AT_0_DBFS


def audiogram_at_bands(levels_db_hl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Audiogram levels (dB HL) interpolated at the octave-band centres [shape=(6,)]."""
    return np.interp(np.log2(BAND_CFS_HZ), np.log2(AUDIOGRAM_CFS), np.asarray(levels_db_hl, dtype=np.float64))


def intelligibility_index(
    speech_db_spl: npt.NDArray[np.float64],
    noise_db_spl: npt.NDArray[np.float64],
    hearing_loss_db_hl: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """SII-like index in [0, 1] from band levels; the last axis is the band, the one before the ear.

    Parameters
    ----------
    speech_db_spl, noise_db_spl : band levels [shape=(..., 2, 6)].
    hearing_loss_db_hl : audiogram at the band centres [shape=(..., 2, 6)].

    Returns
    -------
    Index [shape=(...)].

    Examples
    --------
    >>> s = np.full((2, 6), 70.0); hl = np.zeros((2, 6))
    >>> float(intelligibility_index(s, s - 20, hl)) > float(intelligibility_index(s, s, hl))
    True
    """
    threshold = hearing_loss_db_hl + np.array(THRESHOLD_REF_DB)
    masker = 10 * np.log10(10 ** (noise_db_spl / 10) + 10 ** (threshold / 10))
    audibility = np.clip((speech_db_spl - masker + SPEECH_RANGE_DB / 2) / SPEECH_RANGE_DB, 0.0, 1.0)
    desens = 1 - DESENSITISATION_MAX * np.clip((hearing_loss_db_hl - 30.0) / 60.0, 0.0, 1.0)
    better_ear = np.max(audibility * desens, axis=-2)
    return better_ear @ np.array(BAND_IMPORTANCE)


def word_probability(index: npt.ArrayLike, listener_offset: npt.ArrayLike = 0.0) -> npt.NDArray[np.float64]:
    """Logistic psychometric function: probability that a word is reported correctly."""
    z = (np.asarray(index) - I50 - np.asarray(listener_offset)) / SLOPE
    return 1.0 / (1.0 + np.exp(-z))


def make_response(prompt: str, hits: int, vocabulary: list[str], rng: np.random.Generator) -> str:
    """A typed response with exactly ``hits`` prompt words right (in order).

    Missed words are dropped (70 %) or replaced by a vocabulary word not in the prompt (30 %).
    """
    words = prompt.split()
    heard = set(rng.choice(len(words), size=hits, replace=False).tolist()) if hits else set()
    foreign = [w for w in vocabulary if w not in set(words)]
    out = []
    for i, word in enumerate(words):  # a handful of words: structural loop
        if i in heard:
            out.append(word)
        elif rng.random() < 0.3 and foreign:
            out.append(foreign[int(rng.integers(len(foreign)))])
    return " ".join(out)
