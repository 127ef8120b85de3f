"""The stand-in's talkers: espeak-ng and flite voices with random dialect, timbre, rate and pitch.

A *timbre* is what identifies a talker here: an espeak-ng voice variant (``m1`` ... ``f5``, the Klatt
voices, ...) or a flite voice (``slt``, ``rms``, ``awb``, ``kal16``, ``kal``). Each utterance draws a
timbre, an espeak-ng dialect and a speaking rate and pitch, so the corpus has thousands of distinct
voice settings. :data:`HELDOUT_TIMBRES` never occur in training; the model card tests on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from e032.minicpc1.tts import Voice

#: espeak-ng English dialects (espeak-ng 1.51 voice names)
ESPEAK_DIALECTS: Final[tuple[str, ...]] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
#: espeak-ng voice variants used in training (the odd ones -- whisper, croak, robots -- are left out)
ESPEAK_TRAIN_TIMBRES: Final[tuple[str, ...]] = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m7",
    "m8",
    "f1",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "Andy",
    "Annie",
    "adam",
    "belinda",
    "benjamin",
    "david",
    "ed",
    "linda",
    "max",
    "paul",
    "john",
)
#: flite voices; flite's rate is a duration factor, its pitch a target mean F0 (Hz)
FLITE_TIMBRES: Final[tuple[str, ...]] = ("slt", "rms", "awb", "kal16", "kal")
FLITE_MEAN_F0_HZ: Final[dict[str, float]] = {
    "slt": 170.0,
    "rms": 105.0,
    "awb": 110.0,
    "kal16": 105.0,
    "kal": 105.0,
}
#: timbres never used in training: the held-out voices of the model card (with the dialects below)
HELDOUT_TIMBRES: Final[tuple[str, ...]] = ("m6", "f2")
HELDOUT_DIALECTS: Final[tuple[str, ...]] = ("en-us", "en-gb-x-rp")
FLITE_PROBABILITY: Final[float] = 0.3
ESPEAK_RATE_WPM: Final[tuple[float, float]] = (125.0, 195.0)
ESPEAK_PITCH: Final[tuple[float, float]] = (20.0, 80.0)  # espeak-ng's 0-99 pitch scale
FLITE_DURATION_STRETCH: Final[tuple[float, float]] = (0.85, 1.25)
FLITE_F0_FACTOR: Final[tuple[float, float]] = (0.85, 1.2)


@dataclass(frozen=True)
class VoiceSetting:
    """One drawn talker: engine, timbre, dialect (espeak-ng only), rate and pitch."""

    engine: str
    timbre: str
    dialect: str
    rate: float
    pitch: float

    @property
    def name(self) -> str:
        """A readable ID, e.g. ``espeak_en-gb-x-rp_m3_r160_p45`` or ``flite_slt_r1.05_p180``."""
        if self.engine == "flite":
            return f"flite_{self.timbre}_r{self.rate:.2f}_p{self.pitch:.0f}"
        return f"espeak_{self.dialect}_{self.timbre}_r{self.rate:.0f}_p{self.pitch:.0f}"

    def to_voice(self) -> Voice:
        """The :class:`e032.minicpc1.tts.Voice` that speaks with this setting."""
        if self.engine == "flite":
            args = (
                "-voice",
                self.timbre,
                "--setf",
                f"duration_stretch={self.rate:.3f}",
                "--setf",
                f"int_f0_target_mean={self.pitch:.1f}",
            )
        else:
            args = (
                "-v",
                f"{self.dialect}+{self.timbre}",
                "-s",
                f"{self.rate:.0f}",
                "-p",
                f"{self.pitch:.0f}",
            )
        return Voice(self.name, self.engine, args)


def draw_voice(rng: np.random.Generator, heldout: bool = False) -> VoiceSetting:
    """Draw a talker: a training one, or (``heldout``) an espeak-ng held-out timbre and dialect."""
    if heldout:
        return VoiceSetting(
            "espeak-ng",
            str(rng.choice(HELDOUT_TIMBRES)),
            str(rng.choice(HELDOUT_DIALECTS)),
            float(np.round(rng.uniform(*ESPEAK_RATE_WPM))),
            float(np.round(rng.uniform(*ESPEAK_PITCH))),
        )
    if rng.random() < FLITE_PROBABILITY:
        timbre = str(rng.choice(FLITE_TIMBRES))
        f0 = FLITE_MEAN_F0_HZ[timbre] * rng.uniform(*FLITE_F0_FACTOR)
        return VoiceSetting(
            "flite", timbre, "", float(np.round(rng.uniform(*FLITE_DURATION_STRETCH), 2)), float(np.round(f0))
        )
    return VoiceSetting(
        "espeak-ng",
        str(rng.choice(ESPEAK_TRAIN_TIMBRES)),
        str(rng.choice(ESPEAK_DIALECTS)),
        float(np.round(rng.uniform(*ESPEAK_RATE_WPM))),
        float(np.round(rng.uniform(*ESPEAK_PITCH))),
    )
