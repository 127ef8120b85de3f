"""The signals of one run of the stages and their input files, for CPC1, CPC2 and CPC3.

``prepare_data.py`` and ``evaluate.py`` see a run through one object: its records, the scenes the
train/dev split draws from, its :class:`~e032.manifests.SignalItem` list (CSV ID and part of every
signal), and per item the files and parameters of the stages (:class:`ItemInputs`): HA output and
reference as stored, their sample rate, the 44.1 kHz MSBG input and output, the audiograms and
the trim.

* :class:`Cpc1Run` reads through :mod:`e032.tracks` and :mod:`e032.cpc1_inputs`, as before: CSV IDs
  are the signal IDs, 16 kHz references are named by scene, MSBG outputs go to
  ``<msbg>/<split><track>/``.
* :class:`DatasetRun` reads a CPC2 partition or a CPC3 split through :mod:`e032.datasets`. Scene
  and signal IDs repeat across the CEC1 and CEC2 subsets, so everything is keyed by subset: CSV IDs
  ``<subset>_<signal>`` (CPC2; CPC3 signal IDs are unique already), split scenes and 16 kHz
  references ``<subset>_<scene>`` (CPC3 dev/eval: ``CEC3_<signal>``, one reference per signal),
  MSBG files ``<msbg>/<dataset>/<train|eval|dev>/<CSV ID>_HL-output.wav`` (shared by the CPC2
  partitions, whose training lists overlap). 32 kHz HA outputs are resampled to 44.1 kHz
  (``<CSV ID>_HA-44k.wav`` next to the MSBG output) before MSBG; references go straight to 16 kHz.

Trims (``trim_s``): a number; ``dataset`` (:data:`e032.datasets.TRIM_S`); or ``onset``, detected
in each reference (:func:`onset_s`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from e032.datasets import (
    MSBG_SAMPLE_RATE,
    TRIM_S,
    Dataset,
    SignalRecord,
    open_run_datasets,
)
from e032.io import read_wav
from e032.manifests import SignalItem, items_from_records
from e032.tracks import TrackPaths

logger = logging.getLogger(__name__)

TRIM_MODES: Final[tuple[str, ...]] = ("dataset", "onset")  # trim_s values besides a number
ONSET_FRAME_S: Final[float] = 0.02  # s, frames of the onset detector
ONSET_THRESHOLD_DB: Final[float] = -40.0  # dB re the loudest frame: speech has started
ONSET_MARGIN_S: Final[float] = 0.1  # s kept before the detected onset
MSBG_INPUT_SUFFIX: Final[str] = "_HA-44k.wav"  # 44.1 kHz copy of a 32 kHz HA output


@dataclass(frozen=True)
class ItemInputs:
    """The files and parameters of one signal's stages.

    Attributes
    ----------
    ha_wav, ref_wav : HA output and clean reference as stored (2 channels).
    sample_rate : their sample rate in Hz.
    msbg_input : 44.1 kHz HA output that MSBG reads (``ha_wav`` itself at 44.1 kHz).
    msbg_wav : MSBG output (2 channels, 44.1 kHz, float).
    audiogram_left, audiogram_right : ``msbg.Audiogram`` of the listener's ears.
    trim_s : seconds dropped at the start of the 16 kHz files of the signal and its reference.
    """

    ha_wav: Path
    ref_wav: Path
    sample_rate: int
    msbg_input: Path
    msbg_wav: Path
    audiogram_left: Any
    audiogram_right: Any
    trim_s: float


def onset_s(path: Path, sample_rate: int) -> float:
    """Start of the target in a reference, minus a margin: where its level first comes within
    :data:`ONSET_THRESHOLD_DB` of its loudest :data:`ONSET_FRAME_S` frame (both ears).

    Returns
    -------
    Seconds to drop, >= 0, a whole number of frames minus the margin.

    Raises
    ------
    ValueError
        If the reference is silent (no onset).
    """
    signal = read_wav(path, sample_rate=sample_rate)
    frame_len = max(1, round(ONSET_FRAME_S * sample_rate))
    n_frames = signal.shape[0] // frame_len
    frames = signal[: n_frames * frame_len].reshape(n_frames, frame_len, -1)
    energy = np.mean(frames**2, axis=(1, 2))
    if n_frames == 0 or not np.any(energy > 0):
        raise ValueError(f"{path}: the reference is silent; trim_s=onset needs speech in it")
    level_db = 10 * np.log10(np.maximum(energy, np.finfo(np.float64).tiny) / energy.max())
    first = int(np.argmax(level_db > ONSET_THRESHOLD_DB))
    return max(0.0, first * frame_len / sample_rate - ONSET_MARGIN_S)


class _Run:
    """What both kinds of run share: the trim setting and the onset cache."""

    name: str
    paths: TrackPaths

    def __init__(self, trim_s: object) -> None:
        if isinstance(trim_s, str) and trim_s not in TRIM_MODES:
            raise ValueError(f"trim_s must be a number or one of {list(TRIM_MODES)}, got " f"{trim_s!r}")
        self.trim_setting = trim_s

    def _trim(self, subset: str, ref_wav: Path, sample_rate: int) -> float:
        if self.trim_setting == "dataset":
            return TRIM_S[(self.name, subset)]
        if self.trim_setting == "onset":
            return _cached_onset_s(ref_wav, sample_rate)
        return float(self.trim_setting)

    @property
    def msbg_root(self) -> Path:
        """Folder of the MSBG outputs (``path.msbg_output_dir``)."""
        return self.paths.msbg_root or self.paths.exp_folder / "msbg"


@functools.lru_cache(maxsize=65536)
def _cached_onset_s(path: Path, sample_rate: int) -> float:
    return onset_s(path, sample_rate)


class Cpc1Run(_Run):
    """A CPC1 run (one track), read as before through :mod:`e032.tracks`."""

    name = "cpc1"

    def __init__(
        self, paths: TrackPaths, root: object, trim_s: object, sample_rate: int = MSBG_SAMPLE_RATE
    ) -> None:
        from e032.prepare import load_track_records  # prepare imports this module

        super().__init__(trim_s)
        self.paths = paths
        self.sample_rate = int(sample_rate)
        self.records = load_track_records(paths, root)

    def split_records(self) -> list[dict]:
        """Records whose ``scene`` the train/dev split draws from (the training list)."""
        return self.records["train"]

    def items(self, dev_scenes: Sequence[str]) -> list[SignalItem]:
        """Training items (part ``train`` or ``dev``), then test items, in list order."""
        return items_from_records(self.records["train"], "train", dev_scenes) + items_from_records(
            self.records["test"], "test"
        )

    def reference_wav(self, item: SignalItem) -> Path:
        """``scenes/<scene>_target_anechoic.wav``."""
        return self.paths.target_wav(item.split, item.scene)

    def inputs(self, item: SignalItem) -> ItemInputs:
        """The files of ``item`` (CPC1 paths of :class:`~e032.tracks.TrackPaths`)."""
        listener = self._listeners(item.split)[item.listener]
        ha_wav = self.paths.ha_output_wav(item.split, item.signal)
        ref_wav = self.reference_wav(item)
        return ItemInputs(
            ha_wav,
            ref_wav,
            self.sample_rate,
            ha_wav,
            self.paths.msbg_wav(item.split, item.signal),
            listener.audiogram_left,
            listener.audiogram_right,
            self._trim("CPC1", ref_wav, self.sample_rate),
        )

    @functools.lru_cache(maxsize=2)  # noqa: B019  (one run object per stage call)
    def _listeners(self, split: str) -> dict:
        from msbg import Listener

        return Listener.load_listener_dict(self.paths.listeners_json(split))


class DatasetRun(_Run):
    """A CPC2 partition or a CPC3 predicted split (:func:`e032.datasets.run_splits`)."""

    def __init__(self, cfg: Any, paths: TrackPaths) -> None:
        super().__init__(cfg.trim_s)
        self.paths = paths
        self.name = str(cfg.dataset)
        self.fit, self.predict = open_run_datasets(cfg)
        self.by_split: dict[str, Dataset] = {self.fit.split: self.fit, self.predict.split: self.predict}
        self.fit_records = self.fit.records()
        self.predict_records = self.predict.records()
        self.record_of: dict[tuple[str, str], SignalRecord] = {}
        for ds, records in ((self.fit, self.fit_records), (self.predict, self.predict_records)):
            self.record_of |= {(ds.split, self.utterance_id(r)): r for r in records}

    def utterance_id(self, record: SignalRecord) -> str:
        """CSV ID: ``<subset>_<signal>`` for CPC2 (CEC1 and CEC2 share signal IDs), else the
        signal ID (CPC3 training IDs start with the subset; dev/eval IDs are hashes)."""
        return f"{record.subset}_{record.signal}" if self.name == "cpc2" else record.signal

    def split_records(self) -> list[dict]:
        """One ``{"scene": "<subset>_<scene>"}`` per training record (the split's unit)."""
        return [{"scene": f"{r.subset}_{r.scene}"} for r in self.fit_records]

    def items(self, dev_scenes: Sequence[str]) -> list[SignalItem]:
        """Items of the fit split (part ``train`` or ``dev``), then of the predicted split."""
        dev = set(dev_scenes)
        items = []
        for ds, records in ((self.fit, self.fit_records), (self.predict, self.predict_records)):
            for r in records:
                if ds is self.predict:
                    part = "test"
                else:
                    part = "dev" if f"{r.subset}_{r.scene}" in dev else "train"
                items.append(
                    SignalItem(
                        r.signal,
                        str(r.scene or r.signal),
                        str(r.listener or r.severity),
                        r.prompt,
                        ds.split,
                        part,
                        r.subset,
                        self.utterance_id(r),
                        "_".join(ds.reference_key(r)),
                    )
                )
        return items

    def record(self, item: SignalItem) -> SignalRecord:
        """The dataset record of ``item``."""
        return self.record_of[(item.split, item.id)]

    def reference_wav(self, item: SignalItem) -> Path:
        """The reference as stored (:meth:`e032.datasets.Dataset.reference_wav`)."""
        return self.by_split[item.split].reference_wav(self.record(item))

    def msbg_folder(self, item: SignalItem) -> Path:
        """``<msbg>/<dataset>/<train|eval|dev>``: CPC2 partitions share their HA outputs."""
        return self.msbg_root / self.name / item.split.split(".")[0]

    def inputs(self, item: SignalItem) -> ItemInputs:
        """The files of ``item`` (the dataset's paths; MSBG files keyed by CSV ID)."""
        from msbg import Audiogram

        ds, record = self.by_split[item.split], self.record(item)
        ha_wav, ref_wav = ds.ha_output_wav(record), ds.reference_wav(record)
        folder = self.msbg_folder(item)
        resampled = ds.sample_rate != MSBG_SAMPLE_RATE
        audiograms = ds.audiograms(record)
        left, right = (
            Audiogram(levels, audiograms.frequencies_hz)
            for levels in (audiograms.left_db_hl, audiograms.right_db_hl)
        )
        return ItemInputs(
            ha_wav,
            ref_wav,
            ds.sample_rate,
            folder / f"{item.id}{MSBG_INPUT_SUFFIX}" if resampled else ha_wav,
            folder / f"{item.id}_HL-output.wav",
            left,
            right,
            self._trim(item.subset, ref_wav, ds.sample_rate),
        )

    def check_files(self) -> int:
        """Header checks of every HA output and reference (:meth:`Dataset.check_files`)."""
        return self.fit.check_files(self.fit_records) + self.predict.check_files(self.predict_records)


def open_run(cfg: Any, paths: TrackPaths) -> Cpc1Run | DatasetRun:
    """The run configured by ``cfg`` (``dataset``; CPC1 when the key is absent)."""
    if "dataset" not in cfg or str(cfg.dataset) == "cpc1":
        return Cpc1Run(paths, cfg.path.root, cfg.trim_s, int(cfg.MSBGEar.sample_rate))
    return DatasetRun(cfg, paths)
