"""CPC1 signal records and the 18 SpeechBrain CSVs of the ASR data (notes §2.3).

Each CSV has the original columns ``ID, duration, wav, spk_id, wrd``: the signal ID
(``left_<signal>`` and ``right_<signal>`` in the binaural files), the duration in seconds after the
2-s cut (``str`` of a float, as the original), the path of the mono 16 kHz file, the listener ID and
the upper-cased prompt. Rows follow the order of the CPC1 JSON. Unlike the original, the rows are
rebuilt from every file on disk, so a resumed run writes complete CSVs.

Paths are written as ``$data_root/<path inside the ASR data folder>`` (SpeechBrain's convention):
the reader replaces ``$data_root`` with the folder given at run time, so an experiment folder can
move between machines. CSVs of older runs, with absolute paths, still read.

:func:`read_manifest` is the project's one reader of SpeechBrain CSVs (prepare, training, the
tokenizer, inference and the mini-CPC1 generator all use it).

The reference (``ref``) rows of all signals of one scene point to one per-scene file (the clean
target does not depend on the listener or system); the original wrote a copy per signal.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import soundfile as sf

from e032.io import write_csv_atomic
from e032.tracks import TrackPaths

logger = logging.getLogger(__name__)

CSV_HEADER = ("ID", "duration", "wav", "spk_id", "wrd")
EARS: tuple[Literal["left", "right"], ...] = ("left", "right")
PARTS: tuple[Literal["train", "dev", "test"], ...] = ("train", "dev", "test")
KINDS: tuple[Literal["msbg", "ref"], ...] = ("msbg", "ref")
REQUIRED_KEYS = ("signal", "scene", "listener", "prompt")
ASR_SAMPLE_RATE = 16000  # Hz of the ASR data and of the ASR itself (the LibriSpeech model's rate)
MIN_ASR_INPUT_S = 0.1  # shortest 16 kHz file the ASR takes (it fails below ~0.04 s)
DATA_ROOT = "$data_root"  # SpeechBrain's placeholder for the data folder given at run time


@dataclass(frozen=True)
class ManifestRow:
    """One utterance of a SpeechBrain CSV: its ``ID``, ``wav`` (resolved) and every column."""

    id: str
    wav: Path
    columns: dict[str, str]


def read_manifest(
    csv_path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    required: Sequence[str] = ("ID", "wav"),
    what: str = "SpeechBrain CSV",
) -> list[ManifestRow]:
    """Read a SpeechBrain CSV in file order, with ``$data_root`` replaced by ``data_root``.

    Parameters
    ----------
    csv_path
        The CSV (header row first).
    data_root
        Folder that ``$data_root`` stands for; ``None`` = the CSV's own folder. Absolute paths
        (CSVs written before ``$data_root`` was used) are returned as they are.
    required
        Columns that must be present (``ID`` is always required).
    what
        What the file is, for error messages.

    Returns
    -------
    list of ManifestRow, in file order.

    Raises
    ------
    FileNotFoundError
        If the CSV does not exist.
    ValueError
        If a required column is missing, there are no rows, or an ``ID`` repeats.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("ID,wav\\nu1,$data_root/x/u1.wav\\n")
    >>> [(r.id, r.wav.as_posix()) for r in read_manifest(folder / "a.csv", "/data")]
    [('u1', '/data/x/u1.wav')]
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{what} not found: {csv_path}")
    root = str(csv_path.parent if data_root is None else data_root)
    needed = list(dict.fromkeys(["ID", *required]))
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{csv_path} lacks the column(s) {missing}: expected a {what} with "
                f"the columns {needed} (got {reader.fieldnames})"
            )
        rows: list[ManifestRow] = []
        seen: set[str] = set()
        for columns in reader:
            utt_id = columns["ID"]
            if utt_id in seen:
                raise ValueError(f"{csv_path}: ID {utt_id!r} appears twice")
            seen.add(utt_id)
            wav = columns.get("wav")
            path = Path(wav.replace(DATA_ROOT, root)) if wav is not None else Path()
            rows.append(ManifestRow(utt_id, path, dict(columns)))
    if not rows:
        raise ValueError(f"{csv_path} has no rows: expected at least one utterance")
    return rows


def data_root_path(path: Path, data_root: Path) -> str:
    """``path`` written as ``$data_root/<path relative to data_root>`` (POSIX separators).

    >>> data_root_path(Path("/exp/asr_data/train_left_msbg/S1.wav"), Path("/exp/asr_data"))
    '$data_root/train_left_msbg/S1.wav'
    """
    return f"{DATA_ROOT}/{path.relative_to(data_root).as_posix()}"


@dataclass(frozen=True)
class SignalItem:
    """One signal: its IDs, its prompt, the split it comes from and its CSV part.

    CPC1 items leave the last three fields empty: the CSV ID is the signal ID and the 16 kHz
    reference is named by the scene. CPC2/CPC3 items (:mod:`e032.run_items`) set them, because
    signal and scene IDs repeat across the CEC1 and CEC2 subsets.
    """

    signal: str
    scene: str
    listener: str
    prompt: str
    split: str  # source split: CPC1 "train" | "test" (archive, listener file); CPC2 "train.N" ...
    part: Literal["train", "dev", "test"]  # CSV part
    subset: str = "CPC1"  # CPC1, CEC1, CEC2 or CEC3
    utt_id: str = ""  # CSV ID, unique in the run; "" = the signal ID
    ref_stem: str = ""  # name of the 16 kHz reference files, one per reference; "" = the scene

    @property
    def id(self) -> str:
        """The CSV ID (and similarity key): ``utt_id``, or the signal ID."""
        return self.utt_id or self.signal

    @property
    def ref_name(self) -> str:
        """File stem of the 16 kHz reference: ``ref_stem``, or the scene ID."""
        return self.ref_stem or self.scene


def items_from_records(
    records: Sequence[dict], split: Literal["train", "test"], dev_scenes: Iterable[str] = ()
) -> list[SignalItem]:
    """Turn validated response records into :class:`SignalItem` in JSON order.

    Training records of a scene in ``dev_scenes`` get part ``dev``; test records get ``test``.
    """
    dev = set(dev_scenes)
    items = []
    for record in records:
        scene = str(record["scene"])
        part = "test" if split == "test" else ("dev" if scene in dev else "train")
        items.append(
            SignalItem(
                str(record["signal"]), scene, str(record["listener"]), str(record["prompt"]), split, part
            )
        )
    return items


def item_wav(paths: TrackPaths, item: SignalItem, ear: str, kind: str):
    """The mono 16 kHz file of ``item`` for ``ear`` and ``kind`` (reference: one per scene)."""
    name = item.id if kind == "msbg" else item.ref_name
    return paths.asr_wav(item.split, ear, kind, name)


def duration_s(path, sample_rate: int) -> float:
    """Duration of a WAV in seconds from its header (frames / rate), checking the rate.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If its sample rate is not ``sample_rate``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"ASR data file not found: {path}")
    info = sf.info(str(path))
    if info.samplerate != sample_rate:
        raise ValueError(f"{path}: sample rate is {info.samplerate} Hz, expected {sample_rate} Hz")
    return info.frames / sample_rate


def csv_rows(
    paths: TrackPaths, items: Sequence[SignalItem], kind: str, sample_rate: int
) -> dict[str, list[list[str]]]:
    """Rows of the left, right and binaural CSVs of ``items`` for one kind.

    Returns
    -------
    dict with keys ``left``, ``right``, ``binaural``; each a list of ``[ID, duration, wav, spk_id,
    wrd]`` rows (strings).
    """
    rows: dict[str, list[list[str]]] = {"left": [], "right": [], "binaural": []}
    for item in items:
        words = item.prompt.upper()
        for ear in EARS:
            wav = item_wav(paths, item, ear, kind)
            duration = str(duration_s(wav, sample_rate))
            listed = data_root_path(wav, paths.asr_data_dir)
            rows[ear].append([item.id, duration, listed, item.listener, words])
            rows["binaural"].append([f"{ear}_{item.id}", duration, listed, item.listener, words])
    return rows


def missing_outputs(paths: TrackPaths, items: Sequence[SignalItem]) -> list:
    """Mono 16 kHz files that the CSVs of ``items`` need and that do not exist yet."""
    needed = {item_wav(paths, item, ear, kind) for item in items for ear in EARS for kind in KINDS}
    return sorted(path for path in needed if not path.is_file())


def write_manifests(paths: TrackPaths, items: Sequence[SignalItem], sample_rate: int) -> int:
    """Write the 18 CSVs ``{left,right,binaural}_{train,dev,test}_{msbg,ref}.csv``.

    Returns
    -------
    Number of signals listed (each once per ear and kind).

    Raises
    ------
    FileNotFoundError
        Listing (up to 5 of) the missing 16 kHz files, if any: run the earlier stages first.
    """
    missing = missing_outputs(paths, items)
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} 16 kHz file(s) needed by the CSVs are missing (e.g. {shown}): run "
            "prepare_data.py without stage=merge, or let every shard finish first"
        )
    for part in PARTS:
        part_items = [item for item in items if item.part == part]
        for kind in KINDS:
            rows = csv_rows(paths, part_items, kind, sample_rate)
            for ear, ear_rows in rows.items():
                write_csv_atomic(paths.asr_csv(ear, part, kind), CSV_HEADER, ear_rows)
    logger.info("wrote 18 CSVs (%d signals) to %s", len(items), paths.asr_data_dir)
    return len(items)
