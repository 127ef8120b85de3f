"""The MSBG ear: level normalisation, outer/middle ear, impaired cochlea, and back.

:class:`Ear` holds the fixed parameters (source position and calibration) and, after
:meth:`Ear.set_audiogram`, the cochlea of one ear. :func:`listen` runs a binaural signal through
it, one ear at a time, as the CPC1 E032 data preparation does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from msbg.audiogram import Audiogram, Severity
from msbg.ear_filters import (
    SOURCE_POSITIONS,
    apply_fir,
    ear_filter_taps,
    output_taps,
    source_correction_db,
)
from msbg.gammatone import Filterbank, filterbank_for, gammatone_filter_time_major
from msbg.levels import calibration_signals, level_gain
from msbg.recruitment import (
    expansion_ratios,
    filter_envelope_forward,
    fused_available,
    recruit_and_sum_backward,
    recruit_and_sum_time_major,
)
from msbg.smearing import FRAMINGS, SMEAR_BROADENING, Framing, smear, smearing_matrix
from msbg.tables import MSBG_SAMPLE_RATE

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Cochlea:
    """Everything :meth:`Ear.process` needs for one audiogram (pyclarity ``Cochlea``).

    Attributes
    ----------
    audiogram : Audiogram
    severity : {"NOTHING", "MILD", "MODERATE", "SEVERE"}
    filterbank : Filterbank
    ratios : ndarray [shape=(n_channels,)]
        Recruitment expansion ratios.
    smear_matrix : ndarray [shape=(256, 256)] or None
        None for NOTHING (no smearing).
    """

    audiogram: Audiogram
    severity: Severity
    filterbank: Filterbank
    ratios: npt.NDArray[np.float64]
    smear_matrix: npt.NDArray[np.float64] | None
    smearing_framing: Framing = "pyclarity"

    @staticmethod
    def from_audiogram(
        audiogram: Audiogram, sample_rate: int, smearing_framing: Framing = "pyclarity"
    ) -> Cochlea:
        """Build the cochlea of ``audiogram`` (cached designs: cheap after the first call)."""
        severity = audiogram.severity
        bank = filterbank_for(severity)
        smear_matrix = None
        if severity != "NOTHING":
            lower, upper = SMEAR_BROADENING[severity]
            smear_matrix = smearing_matrix(lower, upper, float(sample_rate))
        ratios = expansion_ratios(bank.centre_hz, audiogram)
        ratios.flags.writeable = False
        return Cochlea(audiogram, severity, bank, ratios, smear_matrix, smearing_framing)

    def simulate(
        self,
        signal: npt.NDArray[np.float64],
        full_scale_db_spl: float,
        timings: dict | None = None,
        workspace: dict | None = None,
    ) -> npt.NDArray[np.float64]:
        """Smear, filter, recruit and recombine one channel (pyclarity ``Cochlea.simulate``).

        ``workspace``: a dict in which the work arrays are kept between calls (see
        :func:`msbg.recruitment.filter_envelope_forward`); the result never aliases it.
        """
        clock = _StageClock(timings)
        if self.smear_matrix is not None:
            signal = smear(signal, self.smear_matrix, self.smearing_framing)
            clock.tick("smearing")
        bank = self.filterbank
        # Time-major (n_samples, n_channels) layout: the compiled kernels run the channels in
        # lock-step. With numba, two fused passes over time: gammatone + forward envelope
        # pass, then backward envelope pass + recruitment gain + channel sum. (Without numba
        # this falls back to the per-channel scipy filters and numpy.)
        if fused_available(bank, full_scale_db_spl):
            channels, forward = filter_envelope_forward(signal, bank, workspace)
            clock.tick("gammatone")
            summed = recruit_and_sum_backward(channels, forward, bank, self.ratios, full_scale_db_spl)
        else:
            channels = gammatone_filter_time_major(signal, bank)
            clock.tick("gammatone")
            summed = recruit_and_sum_time_major(
                channels, bank.erb_hz, float(bank.sample_rate), self.ratios, full_scale_db_spl
            )
        out = summed * np.power(10, -0.05 * bank.recombination_db)
        clock.tick("envelope_recruitment")
        return out


@dataclass
class _StageClock:
    """Accumulates process time per stage into ``timings`` (when given)."""

    timings: dict | None
    last: float = field(default_factory=time.process_time)

    def tick(self, stage: str) -> None:
        if self.timings is not None:
            now = time.process_time()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
            self.last = now


def _validate_signal(signal: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``signal`` as float64 channels [shape=(n_channels, n_samples)], or a ValueError."""
    array = np.asarray(signal)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    elif array.ndim == 2:
        if array.shape[1] > array.shape[0]:
            raise ValueError(
                f"Ear.process expects time along axis 0 [shape=(n_samples,) or "
                f"(n_samples, n_channels)], got shape {array.shape}: more channels than "
                "samples; transpose a (n_channels, n_samples) signal"
            )
        array = array.T
    else:
        raise ValueError(
            f"Ear.process expects a mono signal [shape=(n_samples,)] or channels "
            f"[shape=(n_samples, n_channels)], got shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError("Ear.process got an empty signal")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"Ear.process expects real numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"signal has {n_bad} NaN/Inf sample(s); expected finite samples")
    return array


class Ear:
    """A simulated (impaired) ear (pyclarity ``msbg.Ear``).

    Parameters
    ----------
    src_pos : {"ff", "df", "ITU"}
        Source position for the outer-ear correction: free field frontal, diffuse field, or the
        ITU-T P.58 ear reference point.
    sample_rate : int
        Hz. Must be 44100 (the filterbank files and filter designs are made for it).
    equiv_0db_spl : float
        dB SPL of a full-scale (RMS 1) signal, before adding ``ahr``.
    ahr : float
        Extra headroom (dB) added to ``equiv_0db_spl``: full scale = ``equiv_0db_spl + ahr``
        dB SPL (120 dB SPL in E032).
    smearing_framing : {"pyclarity", "clean"}
        "pyclarity" (default, faithful) keeps the frame-buffer quirks of pyclarity's ``smear3``;
        "clean" frames the signal properly (see :func:`msbg.smearing.smear`). Changes the
        numbers of smeared ears only.

    Raises
    ------
    ValueError
        For an unknown ``src_pos`` or a sample rate other than 44100 Hz.

    Examples
    --------
    >>> ear = Ear()
    >>> ear.set_audiogram(Audiogram(levels=[20, 20, 30, 40, 50, 60, 70, 70]))
    >>> out = ear.process(np.sin(np.arange(4410) * 0.1) * 0.01)[0]
    >>> out.shape, ear.cochlea.severity
    ((4608,), 'SEVERE')
    """

    def __init__(
        self,
        src_pos: str = "ff",
        sample_rate: int = MSBG_SAMPLE_RATE,
        equiv_0db_spl: float = 100.0,
        ahr: float = 20.0,
        smearing_framing: Framing = "pyclarity",
    ) -> None:
        if src_pos not in SOURCE_POSITIONS:
            raise ValueError(f"src_pos must be one of {SOURCE_POSITIONS}, got {src_pos!r}")
        if sample_rate != MSBG_SAMPLE_RATE:
            raise ValueError(
                f"MSBG only runs at {MSBG_SAMPLE_RATE} Hz, got sample_rate={sample_rate}; "
                "resample the signal to 44.1 kHz first"
            )
        if not (np.isfinite(equiv_0db_spl) and np.isfinite(ahr)):
            raise ValueError(f"equiv_0db_spl and ahr must be finite, got {equiv_0db_spl}, {ahr}")
        if smearing_framing not in FRAMINGS:
            raise ValueError(f"smearing_framing must be one of {FRAMINGS}, got {smearing_framing!r}")
        self.smearing_framing = smearing_framing
        self.src_pos = src_pos
        self.sample_rate = int(sample_rate)
        self.equiv_0db_spl = float(equiv_0db_spl)
        self.ahr = float(ahr)
        self.src_correction_db = source_correction_db(src_pos)
        self.cochlea: Cochlea | None = None
        # Work arrays kept between calls (fresh memory costs page faults); not thread-safe,
        # like the rest of an Ear: use one Ear per thread.
        self._workspace: dict = {}

    @property
    def full_scale_db_spl(self) -> float:
        """Level (dB SPL) of a full-scale (RMS 1) signal: ``equiv_0db_spl + ahr``."""
        return self.equiv_0db_spl + self.ahr

    def set_audiogram(self, audiogram: Audiogram) -> None:
        """Set the ear's hearing loss (cheap: the filter designs are cached).

        Warns (:class:`UserWarning`) when a level exceeds 80 dB HL.
        """
        if not isinstance(audiogram, Audiogram):
            raise ValueError(f"set_audiogram expects an msbg.Audiogram, got {type(audiogram).__name__}")
        audiogram.warn_if_severe(stacklevel=3)
        self.cochlea = Cochlea.from_audiogram(audiogram, self.sample_rate, self.smearing_framing)

    def process(
        self,
        signal: npt.ArrayLike,
        add_calibration: bool = False,
        rng: np.random.Generator | None = None,
        timings: dict | None = None,
    ) -> list[npt.NDArray[np.float64]]:
        """Simulate hearing ``signal`` through this ear (pyclarity ``Ear.process``).

        Parameters
        ----------
        signal : array_like [shape=(n_samples,) or (n_samples, n_channels)]
            44.1 kHz, full scale 1.0 = ``equiv_0db_spl + ahr`` dB SPL, finite. Every channel
            goes through this ear's audiogram, with one level gain for all channels (the
            overall level of all of them over the active RMS of channel 0, as pyclarity); for
            a binaural signal with one audiogram per ear use :func:`listen`.
        add_calibration : bool
            Prepend a calibration tone and speech-shaped noise at the signal's level (and append
            50 ms of silence), as pyclarity's ``add_calibration``. E032 does not use it.
        rng : numpy.random.Generator, optional
            Source of the calibration noise (default: a generator seeded with 0, reproducible).
        timings : dict, optional
            If given, process time (s) per stage is accumulated into it.

        Returns
        -------
        list of ndarray [shape=(n_out,)], float64
            One output per channel, like pyclarity (so ``ear.process(mono)[0]`` is the output
            of a mono signal). ``n_out = n_samples`` when no audiogram is set or its severity
            is NOTHING, else ``(ceil(n_samples / 64) + 3) * 64``. Delayed by ~1078-1270
            samples (not compensated). An all-zero input gives all zeros.

        Raises
        ------
        ValueError
            For an empty, non-finite or 3-D signal, one with more channels than samples, or one
            too short or too quiet for the level measurement (shorter than 441 samples, or no
            10 ms frame of channel 0 above -80 dBFS).

        Examples
        --------
        >>> ear = Ear()
        >>> ear.set_audiogram(Audiogram(levels=[20, 20, 30, 40, 50, 60, 70, 70]))
        >>> outputs = ear.process(np.sin(np.arange(4410) * 0.1) * 0.01)
        >>> len(outputs), outputs[0].shape
        (1, (4608,))
        """
        clock = _StageClock(timings)
        channels = _validate_signal(signal)
        level_db = 10 * np.log10(np.mean(channels**2)) if add_calibration else 0.0
        channels = channels * level_gain(channels, self.sample_rate)
        if add_calibration:
            prefix, suffix = calibration_signals(
                level_db, self.sample_rate, rng if rng is not None else np.random.default_rng(0)
            )  # one draw for all channels, as pyclarity's tiled calibration signal
            n_channels = len(channels)
            channels = np.concatenate(
                (np.tile(prefix, (n_channels, 1)), channels, np.tile(suffix, (n_channels, 1))),
                axis=1,
            )
        clock.tick("level")
        return [self._process_channel(x, timings) for x in channels]

    def _process_channel(self, x: npt.NDArray[np.float64], timings: dict | None) -> npt.NDArray[np.float64]:
        """Ear filter, cochlea and output filter of one level-normalised channel."""
        clock = _StageClock(timings)
        x = apply_fir(x, ear_filter_taps(self.src_pos, self.sample_rate, False))
        clock.tick("ear_filters")
        if self.cochlea is not None:
            x = self.cochlea.simulate(x, self.full_scale_db_spl, timings, self._workspace)
            clock.last = time.process_time()
        x = apply_fir(x, output_taps(self.src_pos, self.sample_rate))
        clock.tick("ear_filters")
        return x


def listen(
    ear: Ear,
    signal: npt.ArrayLike,
    audiogram_left: Audiogram,
    audiogram_right: Audiogram,
) -> npt.NDArray[np.float64]:
    """Simulate both ears of a binaural signal, as the E032 data preparation does.

    Column 0 is processed with ``audiogram_left``, column 1 with ``audiogram_right``, each with
    its own level normalisation. When the two outputs differ in length (one ear NOTHING, i.e. not
    smeared) the shorter one is zero-padded at the *start* (a quirk of the original recipe that
    delays that ear by up to 255 samples).

    Parameters
    ----------
    ear : Ear
        Its audiogram is left set to ``audiogram_right`` afterwards.
    signal : array_like [shape=(n_samples, 2)]
    audiogram_left, audiogram_right : Audiogram

    Returns
    -------
    ndarray [shape=(n_out, 2)], float64

    Raises
    ------
    ValueError
        If ``signal`` is not ``(n_samples, 2)``, or for the reasons of :meth:`Ear.process`.
    """
    array = np.asarray(signal)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"listen expects a binaural signal [shape=(n_samples, 2)], got {array.shape}")
    outputs = []
    for column, audiogram in enumerate((audiogram_left, audiogram_right)):  # two ears
        ear.set_audiogram(audiogram)
        outputs.append(ear.process(array[:, column])[0])
    n_out = max(len(out) for out in outputs)
    result = np.zeros((n_out, 2))
    for column, out in enumerate(outputs):
        result[n_out - len(out) :, column] = out
    return result
