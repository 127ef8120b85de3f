"""CPC1, CPC2 and CPC3 described once: lists, files, listeners, rates, levels, trims, submissions.

A pure description plus cheap readers (JSON, CSV, WAV headers); nothing here runs a stage. For a
dataset root and one split, :func:`open_dataset` returns an object that lists the response
records, names each record's hearing-aid (HA) output and reference files, resolves its listener to
audiograms, and gives the input sample rate, the MSBG level, the trim and the submission file.
Sources of every value are in docs/datasets.md.

Roots are the folders the official archives were unpacked in:

* ``cpc1``: ``<root>/clarity_CPC1_data_{train,test}/`` (and the test labels in
  ``<root>/test_listener_responses/``), read through :mod:`e032.tracks` and :mod:`e032.cpc1_inputs`;
* ``cpc2``: ``<root>/clarity_CPC2_data/clarity_data/{HA_outputs,metadata,scenes}/``;
* ``cpc3``: ``<root>/clarity_CPC3_data/clarity_data/{metadata,train,dev,eval}/``.

Scene IDs are not unique across the CEC1 and CEC2 subsets of CPC2 and CPC3 (290 scene IDs of the
CPC3 training list occur in both), so every record is keyed by ``(subset, signal)`` and every
reference by ``(subset, scene)``; never by the bare ID.

Glossary (ours -> challenge / pyclarity):

* ``subset``: ``CPC1`` for CPC1; the ``CEC1`` / ``CEC2`` enhancement challenge a CPC2 or CPC3
  signal comes from; ``CEC3`` for the CPC3 development and evaluation sets.
* ``severity``: CPC3 ``listeners.csv`` ``severity`` or ``CPC3.{dev,eval}.json`` ``hearing_loss``.
* ``msbg_level_db_spl``: the level in dB SPL of a signal with RMS 1 (0 dBFS); pyclarity's MSBG
  ``equiv_0db_spl + ahr``, HASPI's ``level1`` / ``level``.
* ``trim_s``: seconds dropped at the start of every 16 kHz ASR input (E032's 2 s for CPC1).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from e032.cpc1_inputs import (
    check_dataset_folders,
    check_listeners,
    check_wav_headers,
    load_records,
    read_response_list,
)
from e032.ids import CPC1_IDS, IdScheme, check_record_ids
from e032.io import read_json
from e032.tracks import TRACK_SUFFIX, TrackPaths
from msbg.tables import CLARITY_AUDIOGRAM_HZ, MSBG_SAMPLE_RATE

DatasetName = Literal["cpc1", "cpc2", "cpc3"]
Cpc2Layout = Literal["auto", "v1_1", "v1_0"]

DATASET_NAMES: Final[tuple[str, ...]] = ("cpc1", "cpc2", "cpc3")
SPLITS: Final[dict[str, tuple[str, ...]]] = {
    "cpc1": ("train", "test"),
    "cpc2": ("train.1", "train.2", "train.3", "eval.1", "eval.2", "eval.3"),
    "cpc3": ("train", "dev", "eval"),
}
#: (fit split, predict split): the logistic mapping is fitted on the first, applied to the second.
#: CPC1 fits on the dev part (30 % of the training scenes, e032.data_split) of "train".
FIT_PAIRS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "cpc1": (("train", "test"),),
    "cpc2": (("train.1", "eval.1"), ("train.2", "eval.2"), ("train.3", "eval.3")),
    "cpc3": (("train", "dev"), ("train", "eval")),
}

CPC1_SAMPLE_RATE: Final[int] = 44100  # Hz; CPC1 HA outputs are 32-bit float WAVs
CPC23_SAMPLE_RATE: Final[int] = 32000  # Hz; CPC2/CPC3 HA outputs and references are 16-bit PCM
ASR_SAMPLE_RATE: Final[int] = 16000  # Hz; references are resampled straight to it (no MSBG)
N_CHANNELS: Final[int] = 2  # every HA output and reference is binaural (left, right)

#: dB SPL of a signal with RMS 1 (0 dBFS). CPC1: E032's MSBG Ear(equiv_0db_spl=100, ahr=20), the
#: CPC1/CEC1 model convention; CPC2/CPC3: the CEC listening tests' 0 dBFS = 100 dB SPL, the
#: level the organisers' HASPI baselines use (haspi_v2_be level=100).
MSBG_LEVEL_DB_SPL: Final[dict[str, float]] = {"cpc1": 120.0, "cpc2": 100.0, "cpc3": 100.0}

#: Seconds dropped at the start of each ASR input, per (dataset, subset). CEC1 scenes start the
#: target 2 s after the interferer; CEC2 targets start 1.0-1.5 s in, so 1.0 s. CEC3 (CPC3 dev and
#: eval): no documented onset; 1.0 s is our choice (the earliest CEC2 onset).
TRIM_S: Final[dict[tuple[str, str], float]] = {
    ("cpc1", "CPC1"): 2.0,
    ("cpc2", "CEC1"): 2.0,
    ("cpc2", "CEC2"): 1.0,
    ("cpc3", "CEC1"): 2.0,
    ("cpc3", "CEC2"): 1.0,
    ("cpc3", "CEC3"): 1.0,
}

#: CPC3 severity -> canonical audiogram (dB HL at CLARITY_AUDIOGRAM_HZ, both ears). pyclarity
#: clarity/utils/audiogram.py AUDIOGRAM_MILD / _MODERATE / _MODERATE_SEVERE at 250-8000 Hz, as
#: recipes/cpc3/baseline/compute_haspi.py uses them (claritychallenge/clarity 9df6486f).
CPC3_SEVERITY_AUDIOGRAMS_DB_HL: Final[dict[str, tuple[float, ...]]] = {
    "Mild": (10.0, 15.0, 19.0, 25.0, 28.0, 31.0, 35.0, 38.0),
    "Moderate": (20.0, 20.0, 25.0, 35.0, 40.0, 45.0, 50.0, 55.0),
    "Moderately severe": (19.0, 28.0, 40.0, 52.0, 56.0, 58.0, 58.0, 63.0),
}

#: Submission CSV header of the challenges (CPC1-3 e-mailed files); the CPC3 dev leaderboard
#: (EvalAI) wants no header.
SUBMISSION_HEADER: Final[tuple[str, str]] = ("signal_ID", "intelligibility_score")

CPC2_IDS: Final = IdScheme(
    name="CPC2",
    # pyclarity's parse_cec2_signal_name accepts a suffixed system ("E001_hr"); so do we
    patterns={
        "signal": r"S\d{5}_L\d{4}_E\d{3}(?:_[A-Za-z0-9]+)?",
        "scene": r"S\d{5}",
        "listener": r"L\d{4}",
        "system": r"E\d{3}(?:_[A-Za-z0-9]+)?",
    },
    signal_parts=("scene", "listener", "system"),
)
CPC3_TRAIN_SIGNAL: Final = re.compile(r"(CEC[12])_(E\d{3})_(S\d{5})_(L\d{4})")
CPC3_HASHED_SIGNAL: Final = re.compile(r"[0-9a-f]{24}")
CPC2_SUBSETS: Final[tuple[str, ...]] = ("CEC1", "CEC2")
MAX_LISTED: Final[int] = 5


@dataclass(frozen=True)
class Audiograms:
    """Both ears' hearing thresholds.

    Attributes
    ----------
    frequencies_hz : audiogram frequencies in Hz [shape=(n_freqs,)].
    left_db_hl, right_db_hl : thresholds in dB HL [shape=(n_freqs,)].
    """

    frequencies_hz: tuple[float, ...]
    left_db_hl: tuple[float, ...]
    right_db_hl: tuple[float, ...]


@dataclass(frozen=True)
class SignalRecord:
    """One listener response (or, unlabelled, one signal to predict).

    Attributes
    ----------
    subset : ``CPC1``, ``CEC1``, ``CEC2`` or ``CEC3``.
    signal : signal ID, the HA output's file stem.
    scene, listener, system : IDs, or None where the dataset hides them (CPC3 dev/eval).
    prompt : the target sentence.
    n_words : words in the prompt, or None if the list does not say.
    correctness : percentage of words repeated correctly (0-100), or None if unlabelled.
    severity : CPC3 hearing-loss severity, or None.
    raw : the record as read (for fields not modelled here).
    """

    subset: str
    signal: str
    scene: str | None
    listener: str | None
    system: str | None
    prompt: str
    n_words: int | None = None
    correctness: float | None = None
    severity: str | None = None
    raw: Mapping = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """``(subset, signal)``: unique within a dataset."""
        return (self.subset, self.signal)

    @property
    def scene_key(self) -> tuple[str, str] | None:
        """``(subset, scene)``, or None where the scene is hidden."""
        return None if self.scene is None else (self.subset, self.scene)


@dataclass(frozen=True)
class SubmissionFormat:
    """File name and header of one prediction CSV (columns: signal ID, predicted correctness)."""

    file_name: str
    header: tuple[str, str] | None


@dataclass(frozen=True)
class Dataset:
    """One split of one dataset under ``root``; build it with :func:`open_dataset`."""

    name: str
    root: Path
    split: str

    # --- description ----------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz of the HA outputs and references as stored."""
        return CPC1_SAMPLE_RATE if self.name == "cpc1" else CPC23_SAMPLE_RATE

    @property
    def msbg_sample_rate(self) -> int:
        """Rate MSBG runs at; HA outputs at another rate are resampled to it first."""
        return MSBG_SAMPLE_RATE

    @property
    def msbg_level_db_spl(self) -> float:
        """dB SPL of a signal with RMS 1 (``equiv_0db_spl + ahr`` of pyclarity's MSBG Ear)."""
        return MSBG_LEVEL_DB_SPL[self.name]

    def trim_s(self, record: SignalRecord) -> float:
        """Seconds dropped at the start of this record's ASR inputs (both signal and reference)."""
        return TRIM_S[(self.name, record.subset)]

    def submission(self, team_id: str) -> SubmissionFormat:
        """Name and header of the challenge's prediction file for this split.

        Raises
        ------
        ValueError
            For a split whose predictions are not submitted (naming the splits that are), or a
            team ID that is not letters and digits.
        """
        raise ValueError(
            f"{self.name} split {self.split!r} has no submission; "
            f"predictions are submitted for {self._predicted_splits()}"
        )

    def _predicted_splits(self) -> list[str]:
        return [pair[1] for pair in FIT_PAIRS[self.name]]

    # --- readers (overridden) -------------------------------------------------------------
    def records(self) -> list[SignalRecord]:
        """The split's records, checked; keys ``(subset, signal)`` are unique."""
        raise NotImplementedError

    def ha_output_wav(self, record: SignalRecord) -> Path:
        """The hearing-aid output of ``record``."""
        raise NotImplementedError

    def reference_key(self, record: SignalRecord) -> tuple[str, str]:
        """Key of ``record``'s reference file: records with equal keys share one reference."""
        raise NotImplementedError

    def reference_wav(self, record: SignalRecord) -> Path:
        """The clean reference of ``record``."""
        raise NotImplementedError

    def audiograms(self, record: SignalRecord) -> Audiograms:
        """The listener's audiograms (CPC3: the canonical audiogram of the severity)."""
        raise NotImplementedError

    # --- checks ---------------------------------------------------------------------------
    def check_files(self, records: Sequence[SignalRecord]) -> int:
        """Check that every HA output and reference exists with the dataset's rate and channels.

        Returns
        -------
        Number of files checked.

        Raises
        ------
        FileNotFoundError, ValueError
            Naming the missing or malformed files (see :func:`e032.cpc1_inputs.check_wav_headers`).
        """
        self._check_layout(records)
        n_files = 0
        for subset in sorted({r.subset for r in records}):
            chosen = [r for r in records if r.subset == subset]
            trim_s = self.trim_s(chosen[0])
            refs = {self.reference_key(r): self.reference_wav(r) for r in chosen}
            files = [self.ha_output_wav(r) for r in chosen] + sorted(refs.values())
            n_files += check_wav_headers(files, self.sample_rate, N_CHANNELS, trim_s)
        return n_files

    def _check_layout(self, records: Sequence[SignalRecord]) -> None:
        """Raise a one-line error for a layout mix-up (overridden where one can happen)."""


# ------------------------------------------------------------------------------------------
# CPC1: the existing readers (e032.tracks, e032.cpc1_inputs), unchanged


@dataclass(frozen=True)
class Cpc1Dataset(Dataset):
    """CPC1 train or test of one track (closed: ``CPC1.<split>.json``; open: ``_indep``)."""

    track: str = "closed"
    test_labels_dir: Path | None = None

    @property
    def paths(self) -> TrackPaths:
        """The track's paths (:mod:`e032.tracks`); ``exp_folder`` is unused here."""
        return TrackPaths(
            track=self.track,
            suffix=TRACK_SUFFIX[self.track],
            train_data=self.root / "clarity_CPC1_data_train",
            test_data=self.root / "clarity_CPC1_data_test",
            exp_folder=self.root / "e032",
            test_labels_dir=self.test_labels_dir or self.root / "test_listener_responses",
        )

    def records(self) -> list[SignalRecord]:
        """Records of ``CPC1.<split><suffix>.json``; test labels joined from the labels folder."""
        check_dataset_folders(self.paths, self.root)
        path = self.paths.responses_json(self.split)
        raw = load_records(path)
        check_record_ids(raw, path, CPC1_IDS)
        check_listeners(raw, path, self.paths.listeners_json(self.split))
        labels = self._test_labels() if self.split == "test" else {}
        return [_record("CPC1", r, labels.get(r["signal"], r)) for r in raw]

    def _test_labels(self) -> dict[str, dict]:
        path = self.paths.test_labels_json()
        return {r["signal"]: r for r in load_records(path)} if path.is_file() else {}

    def ha_output_wav(self, record: SignalRecord) -> Path:
        """``clarity_data/HA_outputs/<split><suffix>/<signal>.wav``."""
        return self.paths.ha_output_wav(self.split, record.signal)

    def reference_key(self, record: SignalRecord) -> tuple[str, str]:
        """``("CPC1", scene)``: one ``<scene>_target_anechoic.wav`` per scene."""
        return ("CPC1", str(record.scene))

    def reference_wav(self, record: SignalRecord) -> Path:
        """``clarity_data/scenes/<scene>_target_anechoic.wav``."""
        return self.paths.target_wav(self.split, str(record.scene))

    def audiograms(self, record: SignalRecord) -> Audiograms:
        """From ``listeners.CPC1_train.json`` (train) or ``listeners.CPC1_all.json`` (test)."""
        return _listener_audiograms(self.paths.listeners_json(self.split), str(record.listener))

    def submission(self, team_id: str) -> SubmissionFormat:
        """``CPC1_<team>.test.csv`` (closed) or ``CPC1_<team>.test_indep.csv`` (open)."""
        if self.split != "test":
            return super().submission(team_id)
        suffix = TRACK_SUFFIX[self.track]
        return SubmissionFormat(f"CPC1_{_team(team_id)}.test{suffix}.csv", SUBMISSION_HEADER)


# ------------------------------------------------------------------------------------------
# CPC2


@dataclass(frozen=True)
class Cpc2Dataset(Dataset):
    """CPC2 ``train.N`` (CEC1 and CEC2 lists) or ``eval.N`` (CEC2 only)."""

    layout: str = "auto"
    labels_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """``<root>/clarity_CPC2_data/clarity_data``."""
        return self.root / "clarity_CPC2_data" / "clarity_data"

    @property
    def partition(self) -> str:
        """``1``, ``2`` or ``3``."""
        return self.split.split(".")[1]

    def list_paths(self) -> dict[str, Path]:
        """Subset -> response list: ``CEC{1,2}.train.N.json`` or ``CEC2.test.N.json``."""
        meta = self.data_dir / "metadata"
        if self.split.startswith("eval"):
            return {"CEC2": meta / f"CEC2.test.{self.partition}.json"}
        return {s: meta / f"{s}.train.{self.partition}.json" for s in CPC2_SUBSETS}

    def records(self) -> list[SignalRecord]:
        """Records of the split's lists (a training list may be absent, as in the demo data)."""
        lists = {s: p for s, p in self.list_paths().items() if p.is_file()}
        if not lists:
            expected = " or ".join(str(p) for p in self.list_paths().values())
            raise FileNotFoundError(
                f"CPC2 {self.split}: no response list; expected {expected} "
                f"(unpack the CPC2 archives under {self.root})"
            )
        records = []
        for subset, path in lists.items():
            raw = load_records(path)
            check_record_ids(raw, path, CPC2_IDS)
            check_listeners(raw, path, self.listeners_json)
            labels = _labels(self.labels_dir, path.name)
            records += [_record(subset, r, labels.get(r["signal"])) for r in raw]
        return _unique(records, self.split)

    @property
    def listeners_json(self) -> Path:
        """``metadata/listeners.json`` (CPC1 schema, keyed by listener ID)."""
        return self.data_dir / "metadata" / "listeners.json"

    def resolved_layout(self) -> str:
        """``v1_1`` (``HA_outputs/signals/CEC{1,2}/``) or ``v1_0`` (``HA_outputs/train.N/...``).

        Raises
        ------
        FileNotFoundError, ValueError
            If neither folder exists, if the asked layout's folder is absent, or for ``v1_0`` on an
            eval split (no documented v1_0 location for the evaluation outputs).
        """
        ha = self.data_dir / "HA_outputs"
        found = {"v1_1": (ha / "signals").is_dir(), "v1_0": (ha / "train.1").is_dir()}
        if self.layout not in ("auto", "v1_1", "v1_0"):
            raise ValueError(f"CPC2 layout must be 'auto', 'v1_1' or 'v1_0', got {self.layout!r}")
        if self.layout == "auto":
            if not any(found.values()):
                raise FileNotFoundError(
                    f"{ha}: neither signals/ (CPC2 v1_1) nor train.1/ "
                    "(v1_0) found; unpack clarity_CPC2_data.v1_1.tgz there"
                )
            layout = "v1_1" if found["v1_1"] else "v1_0"
        else:
            layout = self.layout
            if not found[layout]:
                folder = ha / ("signals" if layout == "v1_1" else "train.1")
                raise ValueError(
                    f"CPC2 layout={layout} but {folder} does not exist (this root "
                    f"has {[k for k, v in found.items() if v] or 'neither'} layout)"
                )
        if layout == "v1_0" and self.split.startswith("eval"):
            raise ValueError(
                f"CPC2 {self.split}: evaluation outputs are read from "
                f"{ha / 'signals' / 'CEC2'} (layout v1_1); v1_0 has no such folder"
            )
        return layout

    def _ha_dir(self, subset: str, layout: str) -> Path:
        folder = "signals" if layout == "v1_1" else self.split
        return self.data_dir / "HA_outputs" / folder / subset

    @functools.cached_property
    def _layout(self) -> str:
        return self.resolved_layout()

    def ha_output_wav(self, record: SignalRecord) -> Path:
        """``HA_outputs/signals/<CEC>/<signal>.wav`` (v1_1) or ``HA_outputs/train.N/<CEC>/...``."""
        return self._ha_dir(record.subset, self._layout) / f"{record.signal}.wav"

    def _check_layout(self, records: Sequence[SignalRecord]) -> None:
        """Refuse a root whose HA outputs sit in the other layout version's folders."""
        layout = self._layout
        other = "v1_0" if layout == "v1_1" else "v1_1"
        if self.split.startswith("eval"):
            return
        misplaced = [
            self._ha_dir(r.subset, other) / f"{r.signal}.wav"
            for r in records
            if not (self._ha_dir(r.subset, layout) / f"{r.signal}.wav").is_file()
            and (self._ha_dir(r.subset, other) / f"{r.signal}.wav").is_file()
        ]
        if misplaced:
            raise ValueError(
                f"CPC2 {self.split}: layout {layout} is in use but {len(misplaced)} HA output(s) "
                f"are only in the {other} folders (e.g. {misplaced[0]}): the root mixes CPC2 "
                f"v1_0 and v1_1; unpack one version only, or pass layout='{other}'"
            )

    def reference_key(self, record: SignalRecord) -> tuple[str, str]:
        """``(CEC, scene)``: scene IDs repeat across CEC1 and CEC2."""
        return (record.subset, str(record.scene))

    def reference_wav(self, record: SignalRecord) -> Path:
        """``scenes/<CEC>/<scene>_target_ref.wav`` (scaled to the target at the HA input)."""
        return self.data_dir / "scenes" / record.subset / f"{record.scene}_target_ref.wav"

    def audiograms(self, record: SignalRecord) -> Audiograms:
        """From ``metadata/listeners.json``."""
        return _listener_audiograms(self.listeners_json, str(record.listener))

    def submission(self, team_id: str) -> SubmissionFormat:
        """``CPC2_<team>.<N>.csv`` for ``eval.N``."""
        if not self.split.startswith("eval"):
            return super().submission(team_id)
        return SubmissionFormat(f"CPC2_{_team(team_id)}.{self.partition}.csv", SUBMISSION_HEADER)


# ------------------------------------------------------------------------------------------
# CPC3


@dataclass(frozen=True)
class Cpc3Dataset(Dataset):
    """CPC3 ``train`` (CEC1 + CEC2, labelled), ``dev`` or ``eval`` (CEC3, hashed IDs)."""

    labels_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """``<root>/clarity_CPC3_data/clarity_data``."""
        return self.root / "clarity_CPC3_data" / "clarity_data"

    @property
    def list_path(self) -> Path:
        """``metadata/CPC3.<split>.json``."""
        return self.data_dir / "metadata" / f"CPC3.{self.split}.json"

    @property
    def listeners_csv(self) -> Path:
        """``metadata/listeners.csv``: ``listener_id,severity`` (training listeners)."""
        return self.data_dir / "metadata" / "listeners.csv"

    def records(self) -> list[SignalRecord]:
        """Records of ``CPC3.<split>.json`` (with labels from ``labels_dir`` where given)."""
        raw = _read_list(
            self.list_path,
            ("signal", "prompt", "n_words")
            + (("correctness",) if self.split == "train" else ("hearing_loss",)),
        )
        if self.split == "train":
            severities = read_severities(self.listeners_csv)
            records = [_cpc3_train_record(r, self.list_path, severities) for r in raw]
        else:
            labels = _labels(self.labels_dir, self.list_path.name)
            records = [_cpc3_hashed_record(r, self.list_path, labels) for r in raw]
        return _unique(records, self.split)

    def ha_output_wav(self, record: SignalRecord) -> Path:
        """``<split>/signals/<signal>.wav``."""
        return self.data_dir / self.split / "signals" / f"{record.signal}.wav"

    def reference_key(self, record: SignalRecord) -> tuple[str, str]:
        """Train: ``(CEC, scene)``; dev/eval: ``("CEC3", signal)`` (one reference per signal)."""
        if self.split == "train":
            return (record.subset, str(record.scene))
        return (record.subset, record.signal)

    def reference_wav(self, record: SignalRecord) -> Path:
        """``train/references/<CEC>_<scene>_ref.wav`` or ``<split>/references/<signal>_ref.wav``.

        Dev and eval references are not scaled to the target level at the HA input.
        """
        refs = self.data_dir / self.split / "references"
        if self.split == "train":
            return refs / f"{record.subset}_{record.scene}_ref.wav"
        return refs / f"{record.signal}_ref.wav"

    def audiograms(self, record: SignalRecord) -> Audiograms:
        """The canonical audiogram of the record's severity, both ears."""
        return severity_audiograms(str(record.severity), self.list_path)

    def _check_layout(self, records: Sequence[SignalRecord]) -> None:
        folder = self.data_dir / self.split
        if records and not folder.is_dir():
            archive = {
                "train": "clarity_CPC3_data.v1_1.tar.gz",
                "dev": "clarity_CPC3_data.dev.v1_0.tar.gz",
                "eval": "clarity_CPC3_data.eval.v1_0.tar.gz",
            }[self.split]
            raise FileNotFoundError(
                f"{self.list_path} lists {len(records)} signals but {folder} "
                f"does not exist; unpack {archive} under {self.root}"
            )

    def submission(self, team_id: str) -> SubmissionFormat:
        """Eval: ``CPC3_<team>.csv`` with header; dev (EvalAI leaderboard): no header."""
        if self.split == "eval":
            return SubmissionFormat(f"CPC3_{_team(team_id)}.csv", SUBMISSION_HEADER)
        if self.split == "dev":
            return SubmissionFormat(f"CPC3_{_team(team_id)}.dev.csv", None)
        return super().submission(team_id)


# ------------------------------------------------------------------------------------------
# entry point and helpers


def open_dataset(
    name: DatasetName,
    root: str | Path,
    split: str,
    *,
    track: str = "closed",
    test_labels_dir: str | Path | None = None,
    cpc2_layout: Cpc2Layout = "auto",
    labels_dir: str | Path | None = None,
) -> Dataset:
    """Describe one split of one dataset under ``root`` (reads nothing yet).

    Parameters
    ----------
    name : ``cpc1``, ``cpc2`` or ``cpc3``.
    root : folder the dataset's archives were unpacked in.
    split : one of :data:`SPLITS` ``[name]``.
    track : CPC1 only: ``closed`` or ``open`` (``_indep`` lists).
    test_labels_dir : CPC1 only: folder of ``CPC1.test{,_indep}.json`` (default
        ``<root>/test_listener_responses``).
    cpc2_layout : CPC2 only: ``auto``, ``v1_1`` or ``v1_0`` (HA-output folders).
    labels_dir : CPC2 and CPC3: folder of labelled copies of the evaluation lists
        (``CEC2.test.N.json``, ``CPC3.{dev,eval}.json``), joined by signal where present.

    Returns
    -------
    A :class:`Dataset`.

    Raises
    ------
    ValueError
        For an unknown dataset, split or track (naming the accepted values).

    Examples
    --------
    >>> open_dataset("cpc2", "/data", "eval.2").submission("E032").file_name
    'CPC2_E032.2.csv'
    """
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASET_NAMES)}")
    if split not in SPLITS[name]:
        raise ValueError(f"{name} has no split {split!r}; expected one of {list(SPLITS[name])}")
    root = Path(root).expanduser().resolve()
    if name == "cpc1":
        if track not in TRACK_SUFFIX:
            raise ValueError(f"CPC1 track must be 'closed' or 'open', got {track!r}")
        test_labels = Path(test_labels_dir).expanduser().resolve() if test_labels_dir else None
        return Cpc1Dataset(name, root, split, track=track, test_labels_dir=test_labels)
    labels = Path(labels_dir).expanduser().resolve() if labels_dir else None
    if name == "cpc2":
        return Cpc2Dataset(name, root, split, layout=cpc2_layout, labels_dir=labels)
    return Cpc3Dataset(name, root, split, labels_dir=labels)


def severity_audiograms(severity: str, source: str | Path = "CPC3 metadata") -> Audiograms:
    """The canonical audiogram of a CPC3 severity, for both ears.

    Raises
    ------
    ValueError
        Naming the value, where it came from, and the accepted severities.

    Examples
    --------
    >>> severity_audiograms("Mild").left_db_hl[:3]
    (10.0, 15.0, 19.0)
    """
    levels = CPC3_SEVERITY_AUDIOGRAMS_DB_HL.get(severity)
    if levels is None:
        raise ValueError(
            f"{source}: unknown hearing-loss severity {severity!r}; expected one of "
            f"{list(CPC3_SEVERITY_AUDIOGRAMS_DB_HL)}"
        )
    return Audiograms(tuple(float(f) for f in CLARITY_AUDIOGRAM_HZ), levels, levels)


def read_severities(path: Path) -> dict[str, str]:
    """Listener ID -> severity from CPC3 ``listeners.csv`` (columns ``listener_id,severity``).

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is missing, lacks a column, or gives an unknown severity.
    """
    if not path.is_file():
        raise FileNotFoundError(f"CPC3 listener file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"listener_id", "severity"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a CSV with the columns listener_id,severity")
    for row in rows:
        severity_audiograms(row["severity"], path)
    return {row["listener_id"]: row["severity"] for row in rows}


def disjoint_fit_indices(records: Sequence[SignalRecord], index: int) -> list[int]:
    """Indices of the records that share no signal, system or listener with ``records[index]``.

    pyclarity's leave-out fit (recipes/cpc2/baseline/predict.py, recipes/cpc3/baseline/
    predict_train.py) fits one logistic per record on such a set. Systems are compared with their
    subset (E001 of CEC1 is another system than E001 of CEC2, as pyclarity's CPC3 code does);
    listeners by ID. Records without system or listener (CPC3 dev/eval) exclude nothing on it.

    Examples
    --------
    >>> rs = [SignalRecord("CEC1", f"s{i}", "S1", lis, sys_, "p") for i, (lis, sys_) in
    ...       enumerate([("L1", "E1"), ("L1", "E2"), ("L2", "E1"), ("L2", "E2")])]
    >>> disjoint_fit_indices(rs, 0)
    [3]
    """
    target = records[index]
    return [
        i
        for i, r in enumerate(records)
        if r.key != target.key
        and (target.system is None or (r.subset, r.system) != (target.subset, target.system))
        and (target.listener is None or r.listener != target.listener)
    ]


def _team(team_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]+", team_id):
        raise ValueError(f"team ID {team_id!r} must be letters and digits (e.g. 'E032')")
    return team_id


def _record(subset: str, raw: Mapping, labelled: Mapping | None = None) -> SignalRecord:
    """A CPC1/CPC2 record (all four IDs present); labels from ``labelled`` if it has them."""
    labelled = raw if labelled is None else labelled
    correctness = labelled.get("correctness")
    return SignalRecord(
        subset=subset,
        signal=raw["signal"],
        scene=raw["scene"],
        listener=raw["listener"],
        system=raw.get("system"),
        prompt=raw["prompt"],
        n_words=raw.get("n_words"),
        correctness=None if correctness is None else float(correctness),
        raw=raw,
    )


def _labels(labels_dir: Path | None, list_name: str) -> dict[str, dict]:
    """Signal -> labelled record from ``labels_dir/list_name``, or {} if there is none."""
    if labels_dir is None or not (labels_dir / list_name).is_file():
        return {}
    path = labels_dir / list_name
    return {r["signal"]: r for r in _read_list(path, ("signal", "correctness"))}


def _read_list(path: Path, keys: Sequence[str]) -> list[dict]:
    """A JSON list of records, each with ``keys`` present."""
    records = read_response_list(path, what="response list")
    for index, record in enumerate(records):
        missing = [k for k in keys if not isinstance(record, dict) or k not in record]
        if missing:
            raise ValueError(f"{path}: record {index} lacks {missing} (each needs {list(keys)})")
    return records


def _cpc3_train_record(raw: dict, path: Path, severities: Mapping[str, str]) -> SignalRecord:
    match = CPC3_TRAIN_SIGNAL.fullmatch(str(raw["signal"]))
    if match is None:
        raise ValueError(
            f"{path}: signal {raw['signal']!r} is not <CEC>_<system>_<scene>_"
            f"<listener> ({CPC3_TRAIN_SIGNAL.pattern})"
        )
    subset, system, scene, listener = match.groups()
    if listener not in severities:
        raise ValueError(f"{path}: listener {listener} of signal {raw['signal']} is not in " "listeners.csv")
    return SignalRecord(
        subset,
        raw["signal"],
        scene,
        listener,
        system,
        raw["prompt"],
        int(raw["n_words"]),
        float(raw["correctness"]),
        severities[listener],
        raw,
    )


def _cpc3_hashed_record(raw: dict, path: Path, labels: Mapping[str, Mapping]) -> SignalRecord:
    signal = str(raw["signal"])
    if CPC3_HASHED_SIGNAL.fullmatch(signal) is None:
        raise ValueError(
            f"{path}: signal {signal!r} is not a 24-digit hexadecimal ID " f"({CPC3_HASHED_SIGNAL.pattern})"
        )
    severity_audiograms(raw["hearing_loss"], path)
    correctness = labels.get(signal, {}).get("correctness")
    return SignalRecord(
        "CEC3",
        signal,
        None,
        None,
        None,
        raw["prompt"],
        int(raw["n_words"]),
        None if correctness is None else float(correctness),
        raw["hearing_loss"],
        raw,
    )


def _unique(records: list[SignalRecord], split: str) -> list[SignalRecord]:
    seen: set[tuple[str, str]] = set()
    for record in records:
        if record.key in seen:
            raise ValueError(f"split {split}: signal {record.key} is listed twice")
        seen.add(record.key)
    return records


def _listener_audiograms(path: Path, listener: str) -> Audiograms:
    entry = _listener_file(path, path.stat().st_mtime_ns).get(listener)
    if entry is None:
        raise ValueError(f"{path}: listener {listener} not found")
    cfs = tuple(float(f) for f in entry["audiogram_cfs"])
    return Audiograms(
        cfs,
        tuple(float(v) for v in entry["audiogram_levels_l"]),
        tuple(float(v) for v in entry["audiogram_levels_r"]),
    )


@functools.lru_cache(maxsize=8)
def _listener_file(path: Path, mtime_ns: int) -> dict:
    """A listener file, read once per (path, modification time)."""
    del mtime_ns  # part of the cache key only: an edited file is read again
    return read_json(path, what="listener file")


# ------------------------------------------------------------------------------------------
# one run of the four stages: which splits, which folders


@dataclass(frozen=True)
class RunSplits:
    """The splits of one run: the ASR trains on, and the logistic is fitted on, ``fit``; it
    predicts ``predict``. ``suffix`` names the run's folders and files under ``exp_folder``."""

    dataset: str
    fit: str
    predict: str
    suffix: str


def run_splits(dataset: str, partition: object, split: object) -> RunSplits:
    """The fit and predict splits of a CPC2 partition or a CPC3 predicted split.

    Parameters
    ----------
    dataset : ``cpc2`` or ``cpc3``.
    partition : CPC2: 1, 2 or 3 (``train.N`` -> ``eval.N``).
    split : CPC3: ``dev`` or ``eval`` (``train`` -> it).

    Raises
    ------
    ValueError
        Naming the option, the value and the values accepted.

    Examples
    --------
    >>> run_splits("cpc2", 2, "dev")
    RunSplits(dataset='cpc2', fit='train.2', predict='eval.2', suffix='_cpc2_p2')
    """
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset must be one of {list(DATASET_NAMES)}, got {dataset!r}")
    if dataset == "cpc2":
        fit, predict = next(((f, p) for f, p in FIT_PAIRS["cpc2"] if p == f"eval.{partition}"), (None, None))
        if fit is None:
            raise ValueError(f"CPC2 partition must be 1, 2 or 3, got {partition!r}")
        return RunSplits("cpc2", fit, predict, f"_cpc2_p{partition}")
    if dataset == "cpc3":
        if str(split) not in ("dev", "eval"):
            raise ValueError(
                f"CPC3 split must be 'dev' or 'eval' (the split predicted; the ASR "
                f"and the fit use train), got {split!r}"
            )
        return RunSplits("cpc3", "train", str(split), f"_cpc3_{split}")
    raise ValueError("CPC1 runs use e032.tracks (track closed or open), not run_splits")


def run_track_paths(cfg) -> TrackPaths | None:
    """The folders of a CPC2 or CPC3 run (None for ``dataset: cpc1``: :mod:`e032.tracks`).

    ``exp_folder``, ``msbg_output_dir`` and the file names are those of CPC1 with the run's
    suffix (``_cpc2_p1``, ``_cpc3_dev``, ...); the 16 kHz data go to ``<exp>/asr_data<suffix>``
    and the ASR to ``<exp>/asr<suffix>``. ``train_data`` and ``test_data`` are the dataset's
    ``clarity_data`` folder, ``test_labels_dir`` is ``path.labels``.
    """
    name = str(cfg.dataset)
    if name == "cpc1":
        return None
    run = run_splits(name, cfg.partition, cfg.split)
    root = Path(str(cfg.path.root)).expanduser().resolve()
    data = (Cpc2Dataset if name == "cpc2" else Cpc3Dataset)(name, root, run.fit).data_dir
    msbg_root = cfg.path.msbg_output_dir
    return TrackPaths(
        track=f"{name} {run.fit}->{run.predict}",
        suffix=run.suffix,
        train_data=data,
        test_data=data,
        exp_folder=Path(str(cfg.path.exp_folder)).expanduser().resolve(),
        test_labels_dir=Path(str(cfg.path.labels)).expanduser().resolve(),
        msbg_root=Path(str(msbg_root)).expanduser().resolve() if msbg_root else None,
        asr_data_stem="asr_data",
    )


def open_run_datasets(cfg) -> tuple[Dataset, Dataset]:
    """The fit and predict :class:`Dataset` of a CPC2 or CPC3 run configured by ``cfg``."""
    run = run_splits(str(cfg.dataset), cfg.partition, cfg.split)
    options = {"cpc2_layout": str(cfg.cpc2_layout), "labels_dir": str(cfg.path.labels)}
    return tuple(
        open_dataset(run.dataset, cfg.path.root, split, **options) for split in (run.fit, run.predict)
    )


def msbg_equiv_0db_spl(name: str, equiv_0db_spl: float) -> float:
    """MSBG ``equiv_0db_spl`` of dataset ``name``, given the configured (CPC1) value.

    The configured value is CPC1's (E032: 100, with ahr 20: RMS 1 = 120 dB SPL); another dataset
    shifts it by its level difference (CPC2/CPC3: 100 - 120 = -20 dB), so that an override of
    the CPC1 value moves every dataset alike.

    Examples
    --------
    >>> msbg_equiv_0db_spl("cpc3", 100.0)
    80.0
    """
    return float(equiv_0db_spl) + MSBG_LEVEL_DB_SPL[name] - MSBG_LEVEL_DB_SPL["cpc1"]
