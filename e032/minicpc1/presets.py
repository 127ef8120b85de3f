"""Sizes and knobs of a mini-CPC1 dataset, and the named presets ``tiny`` and ``demo``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from e032.minicpc1.hearing_aids import SYSTEMS


@dataclass(frozen=True)
class MiniCPC1Config:
    """What to generate. Every random choice follows from ``seed``.

    Attributes
    ----------
    n_train_scenes, n_test_scenes : scenes (one target sentence each) in the train and test archives.
    signals_per_scene : distinct (listener, system) pairs that process and hear each scene.
    n_listeners : synthetic listeners (all of them are in both listener files).
    systems : hearing-aid systems used.
    heldout_systems : systems left out of the open-track training list.
    heldout_listener_fraction : share of listeners left out of the open-track training list.
    n_babble_sentences : sentences (never targets) that the babble talkers speak.
    n_clean_train, n_clean_valid : sentences of the clean ASR pre-training corpus.
    clean_voices_per_sentence : each clean sentence is spoken by this many different voices.
    snr_range_db : uniform range of the scene SNR.
    speech_level_range_db_spl : uniform range of the target speech level at the ear (MSBG's calibration,
        0 dBFS = 120 dB SPL). 80-95 dB SPL = -40...-25 dBFS puts the hearing-aid outputs where the real
        CPC1 ones are (median about -23 dBFS; the real sample: -23 / -27 dBFS).
    babble_talkers : talkers in a babble interferer.
    seed : the dataset seed.
    num_workers : worker processes (0 = all cores).
    """

    n_train_scenes: int
    n_test_scenes: int
    signals_per_scene: int = 3
    n_listeners: int = 16
    systems: tuple[str, ...] = tuple(SYSTEMS)
    heldout_systems: tuple[str, ...] = ("E005",)
    heldout_listener_fraction: float = 0.25
    n_babble_sentences: int = 24
    n_clean_train: int = 400
    n_clean_valid: int = 40
    clean_voices_per_sentence: int = 1
    snr_range_db: tuple[float, float] = (-12.0, 12.0)
    speech_level_range_db_spl: tuple[float, float] = (80.0, 95.0)
    babble_talkers: int = 3
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        """Validate sizes and names; one clear error per bad value."""
        for name in (
            "n_train_scenes",
            "n_test_scenes",
            "signals_per_scene",
            "n_listeners",
            "n_babble_sentences",
            "n_clean_train",
            "n_clean_valid",
            "clean_voices_per_sentence",
            "babble_talkers",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = [s for s in (*self.systems, *self.heldout_systems) if s not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown systems {unknown}; known: {sorted(SYSTEMS)}")
        if not set(self.heldout_systems) < set(self.systems):
            raise ValueError(
                f"heldout_systems {self.heldout_systems} must be a proper subset of systems {self.systems}"
            )
        if not 0 < self.heldout_listener_fraction < 1:
            raise ValueError(
                f"heldout_listener_fraction must be in (0, 1), got {self.heldout_listener_fraction}"
            )
        if self.signals_per_scene > self.n_listeners * len(self.systems):
            raise ValueError(
                f"signals_per_scene={self.signals_per_scene} exceeds the "
                f"{self.n_listeners * len(self.systems)} "
                "(listener, system) pairs"
            )
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = all cores), got {self.num_workers}")

    def replace(self, **changes) -> MiniCPC1Config:
        """A copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS: Final[dict[str, MiniCPC1Config]] = {
    # the tests' dataset: seconds to make, both tracks non-empty, dev split (0.3) non-empty
    "tiny": MiniCPC1Config(
        n_train_scenes=8,
        n_test_scenes=5,
        signals_per_scene=3,
        n_babble_sentences=8,
        n_clean_train=40,
        n_clean_valid=8,
    ),
    # make demo: >= 400 train-track and >= 150 test signals
    # (1,500 clean sentences x 2 voices: with 600, the stand-in ASR over-fitted them, 32 % clean WER vs 4 %)
    "demo": MiniCPC1Config(
        n_train_scenes=150,
        n_test_scenes=60,
        signals_per_scene=3,
        n_babble_sentences=24,
        n_clean_train=1500,
        n_clean_valid=60,
        clean_voices_per_sentence=2,
    ),
}
