"""Offline text-to-speech with the Debian packages ``espeak-ng`` and ``flite``.

Both engines are deterministic (the same text and voice give byte-identical WAVs; checked with
espeak-ng 1.51 and flite 2.2). Voices differ in engine, sex, accent, pitch and rate so that the
corpus has several distinct talkers. Output is trimmed of leading and trailing silence and
resampled with a polyphase filter (:func:`resample`), which is deterministic too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly


@dataclass(frozen=True)
class Voice:
    """One TTS talker: ``engine`` is ``espeak-ng`` or ``flite``; ``args`` select voice, rate, pitch."""

    name: str
    engine: str
    args: tuple[str, ...]


VOICES: Final[tuple[Voice, ...]] = (
    Voice("flite_slt", "flite", ("-voice", "slt")),
    Voice("flite_rms", "flite", ("-voice", "rms")),
    Voice("flite_awb", "flite", ("-voice", "awb")),
    Voice("flite_kal16", "flite", ("-voice", "kal16")),
    Voice("espeak_us_m", "espeak-ng", ("-v", "en-us", "-s", "160", "-p", "45")),
    Voice("espeak_us_f", "espeak-ng", ("-v", "en-us+f3", "-s", "165", "-p", "60")),
    Voice("espeak_rp_m", "espeak-ng", ("-v", "en-gb-x-rp+m3", "-s", "155", "-p", "35")),
    Voice("espeak_gb_f", "espeak-ng", ("-v", "en+f4", "-s", "160", "-p", "70")),
)
VOICE_BY_NAME: Final[dict[str, Voice]] = {v.name: v for v in VOICES}
SILENCE_THRESHOLD_DB: Final[float] = -45.0  # relative to the peak 10-ms frame, for trimming
TRIM_MARGIN_S: Final[float] = 0.02


def check_engines() -> None:
    """Raise one clear error if a TTS engine is missing.

    Raises
    ------
    RuntimeError
        Naming the missing programs and how to install them.
    """
    missing = [p for p in ("espeak-ng", "flite") if shutil.which(p) is None]
    if missing:
        raise RuntimeError(
            f"the mini-CPC1 generator needs the TTS programs {missing}: install them with "
            "`sudo apt-get install espeak-ng flite` (or `make install`)"
        )


def _run_engine(text: str, voice: Voice, wav_path: Path) -> None:
    if voice.engine == "flite":
        cmd = ["flite", *voice.args, "-t", text, "-o", str(wav_path)]
    elif voice.engine == "espeak-ng":
        cmd = ["espeak-ng", *voice.args, "-w", str(wav_path), text]
    else:
        raise ValueError(f"unknown TTS engine {voice.engine!r} (expected 'flite' or 'espeak-ng')")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise RuntimeError(f"TTS failed ({' '.join(cmd)}): {result.stderr.strip()}")


def trim_silence(signal: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    """Cut leading and trailing frames quieter than ``SILENCE_THRESHOLD_DB`` below the loudest frame.

    Parameters
    ----------
    signal : mono signal [shape=(n_samples,)].
    sample_rate : Hz.

    Returns
    -------
    The trimmed signal with ``TRIM_MARGIN_S`` of margin at each end.
    """
    frame_len = int(0.01 * sample_rate)
    n_frames = len(signal) // frame_len
    frames = signal[: n_frames * frame_len].reshape(n_frames, frame_len)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    active = np.flatnonzero(level_db > level_db.max() + SILENCE_THRESHOLD_DB)
    margin = int(TRIM_MARGIN_S * sample_rate)
    start = max(0, active[0] * frame_len - margin)
    stop = min(len(signal), (active[-1] + 1) * frame_len + margin)
    return signal[start:stop]


def resample(signal: npt.NDArray[np.float64], from_rate: int, to_rate: int) -> npt.NDArray[np.float64]:
    """Polyphase resampling along the first axis (deterministic, no-op if the rates agree)."""
    if from_rate == to_rate:
        return signal
    g = gcd(from_rate, to_rate)
    return resample_poly(signal, to_rate // g, from_rate // g, axis=0)


def synthesize(text: str, voice_name: str) -> tuple[npt.NDArray[np.float64], int]:
    """Speak ``text`` with the named voice.

    Parameters
    ----------
    text : the sentence (lower case is fine).
    voice_name : a key of :data:`VOICE_BY_NAME`.

    Returns
    -------
    signal : trimmed mono speech, float64 [shape=(n_samples,)], at the engine's native rate.
    sample_rate : Hz (16 000 for flite, 22 050 for espeak-ng).

    Raises
    ------
    KeyError
        For an unknown voice name.
    RuntimeError
        If the engine fails.
    """
    if voice_name not in VOICE_BY_NAME:
        raise KeyError(f"unknown voice {voice_name!r}; known: {sorted(VOICE_BY_NAME)}")
    return speak(text, VOICE_BY_NAME[voice_name])


def speak(text: str, voice: Voice) -> tuple[npt.NDArray[np.float64], int]:
    """Speak ``text`` with any :class:`Voice` (engine and arguments); as :func:`synthesize` otherwise."""
    with tempfile.TemporaryDirectory(prefix="minicpc1_tts_") as tmp:
        wav_path = Path(tmp) / "tts.wav"
        _run_engine(text, voice, wav_path)
        signal, sample_rate = sf.read(wav_path, dtype="float64", always_2d=True)
    return trim_silence(signal[:, 0], int(sample_rate)), int(sample_rate)
