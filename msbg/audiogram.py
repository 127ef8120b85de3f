"""Audiograms, listeners and the severity class that selects the MSBG model parameters.

An audiogram gives the hearing threshold (dB HL) of one ear at a few frequencies. MSBG uses it
twice: its mean over 2-8 kHz picks one of four severity classes (which sets the spectral smearing
and the gammatone filterbank), and its value at each gammatone centre frequency sets the
recruitment expansion ratio of that channel.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from msbg.tables import (
    CATCH_UP_LEVEL_DB_SPL,
    CLARITY_AUDIOGRAM_HZ,
    MIN_AUDIOGRAM_DB_HL,
    SEVERE_WARNING_DB_HL,
)

Severity = Literal["NOTHING", "MILD", "MODERATE", "SEVERE"]

#: Severity thresholds (dB HL, mean over 2-8 kHz, strictly greater than), most severe first.
SEVERITY_THRESHOLDS_DB_HL: tuple[tuple[Severity, float], ...] = (
    ("SEVERE", 56.0),
    ("MODERATE", 35.0),
    ("MILD", 15.0),
)


def _read_only(values: Any, what: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"audiogram {what} must be numbers, got {values!r}") from None
    if array.ndim != 1:
        raise ValueError(f"audiogram {what} must be a 1-D list, got shape {array.shape}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Audiogram:
    """Hearing thresholds of one ear.

    Parameters
    ----------
    levels : sequence of float
        Thresholds in dB HL [shape=(n_freqs,)], each finite, at least -20 dB HL and below
        105 dB HL (the loudness catch-up level; pyclarity overflows at and above it).
    frequencies : sequence of float
        Audiogram frequencies in Hz [shape=(n_freqs,)], positive and strictly increasing.
        Default: the 8 Clarity frequencies 250 ... 8000 Hz.

    Raises
    ------
    ValueError
        If a level is missing (None or NaN), not finite, < -20 or >= 105 dB HL, or if the lengths
        differ or the frequencies are not positive and strictly increasing.

    Examples
    --------
    >>> Audiogram(levels=[10, 10, 20, 30, 40, 50, 60, 60]).severity
    'MODERATE'
    """

    levels: npt.NDArray[np.float64]
    frequencies: npt.NDArray[np.float64] = field(default_factory=lambda: np.array(CLARITY_AUDIOGRAM_HZ))

    def __post_init__(self) -> None:
        """Validate and freeze the arrays."""
        frequencies = _read_only(self.frequencies, "frequencies")
        raw_levels = list(self.levels) if not isinstance(self.levels, np.ndarray) else None
        if raw_levels is not None and any(level is None for level in raw_levels):
            missing = [f"{f:g} Hz" for f, lv in zip(frequencies, raw_levels, strict=False) if lv is None]
            raise ValueError(f"audiogram level missing at {', '.join(missing) or 'some frequency'}")
        levels = _read_only(self.levels, "levels")
        if levels.shape != frequencies.shape:
            raise ValueError(
                f"audiogram has {levels.size} levels but {frequencies.size} frequencies; "
                "give one level (dB HL) per frequency"
            )
        if levels.size == 0:
            raise ValueError("audiogram is empty: give at least one level and frequency")
        if not np.all(np.isfinite(frequencies)) or np.any(frequencies <= 0):
            raise ValueError(f"audiogram frequencies must be positive Hz, got {frequencies}")
        if np.any(np.diff(frequencies) <= 0):
            raise ValueError(f"audiogram frequencies must strictly increase, got {frequencies}")
        bad = ~np.isfinite(levels)
        if np.any(bad):
            where = ", ".join(f"{f:g} Hz" for f in frequencies[bad])
            raise ValueError(f"audiogram level missing or not finite at {where}: {levels}")
        if np.any(levels >= CATCH_UP_LEVEL_DB_SPL):
            raise ValueError(
                f"audiogram levels must be below {CATCH_UP_LEVEL_DB_SPL:g} dB HL (the loudness "
                f"catch-up level of the recruitment model), got max {levels.max():g} dB HL"
            )
        if np.any(levels < MIN_AUDIOGRAM_DB_HL):
            raise ValueError(
                f"audiogram levels must be at least {MIN_AUDIOGRAM_DB_HL:g} dB HL (a threshold is a "
                f"hearing loss, not a gain), got min {levels.min():g} dB HL"
            )
        object.__setattr__(self, "frequencies", frequencies)
        object.__setattr__(self, "levels", levels)

    def __eq__(self, other: object) -> bool:
        """Equal levels and frequencies."""
        if not isinstance(other, Audiogram):
            return NotImplemented
        return bool(
            np.array_equal(self.levels, other.levels) and np.array_equal(self.frequencies, other.frequencies)
        )

    def __hash__(self) -> int:
        """Hash of the levels and frequencies."""
        return hash((self.levels.tobytes(), self.frequencies.tobytes()))

    def __repr__(self) -> str:
        """Show levels and frequencies as lists."""
        return f"Audiogram(levels={self.levels.tolist()}, frequencies={self.frequencies.tolist()})"

    @property
    def severity(self) -> Severity:
        """Severity class from the mean level over 2000-8000 Hz (inclusive).

        ``> 56`` dB HL: SEVERE, ``> 35``: MODERATE, ``> 15``: MILD, else NOTHING (also when the
        audiogram has no frequency in 2-8 kHz). Same rule as pyclarity ``Audiogram.severity``.
        """
        in_band = (self.frequencies >= 2000) & (self.frequencies <= 8000)
        mean_db_hl = float(np.mean(self.levels[in_band])) if np.any(in_band) else 0.0
        for name, threshold_db_hl in SEVERITY_THRESHOLDS_DB_HL:
            if mean_db_hl > threshold_db_hl:
                return name
        return "NOTHING"

    def level_at(self, frequency_hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Threshold (dB HL) at ``frequency_hz``: linear in Hz, held flat outside the range."""
        return np.interp(np.asarray(frequency_hz, dtype=np.float64), self.frequencies, self.levels)

    def warn_if_severe(self, stacklevel: int = 3) -> None:
        """Warn (like pyclarity's log message) when a level exceeds 80 dB HL."""
        if np.max(self.levels) > SEVERE_WARNING_DB_HL:
            warnings.warn(
                f"audiogram reaches {np.max(self.levels):g} dB HL: MSBG is not meant for losses "
                f"above {SEVERE_WARNING_DB_HL:g}-90 dB HL; results may be unrealistic",
                stacklevel=stacklevel,
            )


@dataclass(frozen=True)
class Listener:
    """A listener: the audiograms of both ears and an ID (pyclarity ``Listener``).

    The fields come in pyclarity's order, so ``Listener(left, right, "L0001")`` and
    ``Listener(audiogram_left=..., audiogram_right=..., id=...)`` work as there; anything but
    an :class:`Audiogram` in an audiogram field is an error.

    Parameters
    ----------
    audiogram_left, audiogram_right : Audiogram
    id : str
        The listener ID, e.g. ``"L0239"`` (also readable as :attr:`name`).

    Raises
    ------
    ValueError
        If an audiogram is not an :class:`Audiogram` or ``id`` is not a string.
    """

    audiogram_left: Audiogram
    audiogram_right: Audiogram
    id: str = ""

    def __post_init__(self) -> None:
        """Check the field types (a wrong positional order fails here)."""
        for side in ("audiogram_left", "audiogram_right"):
            value = getattr(self, side)
            if not isinstance(value, Audiogram):
                raise ValueError(
                    f"Listener.{side} must be an msbg.Audiogram, got {type(value).__name__} "
                    "(the fields are audiogram_left, audiogram_right, id, as in pyclarity)"
                )
        if not isinstance(self.id, str):
            raise ValueError(f"Listener.id must be a str, got {type(self.id).__name__}")

    @property
    def name(self) -> str:
        """The listener ID (the ``name`` key of a Clarity listener record); same as ``id``."""
        return self.id

    @staticmethod
    def from_dict(listener: dict[str, Any], source: str = "listener dict") -> Listener:
        """Build a listener from a Clarity metadata record.

        Parameters
        ----------
        listener : dict
            With keys ``name``, ``audiogram_cfs``, ``audiogram_levels_l``, ``audiogram_levels_r``.
        source : str
            What to name in error messages (file and listener ID).

        Raises
        ------
        ValueError
            Naming ``source`` and the missing key or the bad audiogram.
        """
        if not isinstance(listener, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(listener).__name__}")
        keys = ("name", "audiogram_cfs", "audiogram_levels_l", "audiogram_levels_r")
        missing = [key for key in keys if key not in listener]
        if missing:
            raise ValueError(f"{source}: missing key(s) {missing}; expected keys {list(keys)}")
        try:
            left = Audiogram(listener["audiogram_levels_l"], listener["audiogram_cfs"])
            right = Audiogram(listener["audiogram_levels_r"], listener["audiogram_cfs"])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        return Listener(audiogram_left=left, audiogram_right=right, id=str(listener["name"]))

    @staticmethod
    def load_listener_dict(path: str | os.PathLike) -> dict[str, Listener]:
        """Read a Clarity listener file (JSON object keyed by listener ID).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not valid JSON, not an object, or a record lacks a key
            (the message names the file, the listener ID and the key).
        """
        from msbg.files import read_json  # here: the core of msbg needs no soundfile

        path = Path(path)
        raw = read_json(path, what="listener file")
        if not isinstance(raw, dict):
            raise ValueError(f"listener file {path}: expected a JSON object keyed by listener ID")
        return {
            listener_id: Listener.from_dict(record, source=f"listener file {path}, {listener_id!r}")
            for listener_id, record in raw.items()
        }


def audiogram_from_levels(levels: Sequence[float]) -> Audiogram:
    """Audiogram at the 8 Clarity frequencies (250 ... 8000 Hz) from 8 levels in dB HL."""
    return Audiogram(levels=levels, frequencies=CLARITY_AUDIOGRAM_HZ)
