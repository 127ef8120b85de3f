"""CPC1 signal records and the 18 SpeechBrain CSVs of the ASR data (notes §2.3).

Each CSV has the original columns ``ID, duration, wav, spk_id, wrd``: the signal ID
(``left_<signal>`` and ``right_<signal>`` in the binaural files), the duration in seconds after the
2-s cut (``str`` of a float, as the original), the absolute path of the mono 16 kHz file, the
listener ID and the upper-cased prompt. Rows follow the order of the CPC1 JSON. Unlike the
original, the rows are rebuilt from every file on disk, so a resumed run writes complete CSVs.

The reference (``ref``) rows of all signals of one scene point to one per-scene file (the clean
target does not depend on the listener or system); the original wrote a copy per signal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
MIN_ASR_INPUT_S = 0.1  # shortest 16 kHz file the ASR takes (it fails below ~0.04 s)


@dataclass(frozen=True)
class SignalItem:
    """One CPC1 signal: its IDs, its prompt, the archive it comes from and its CSV part."""

    signal: str
    scene: str
    listener: str
    prompt: str
    split: Literal["train", "test"]  # source archive (and MSBG listener file)
    part: Literal["train", "dev", "test"]  # CSV part


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
        items.append(SignalItem(str(record["signal"]), scene, str(record["listener"]),
                                str(record["prompt"]), split, part))
    return items


def item_wav(paths: TrackPaths, item: SignalItem, ear: str, kind: str):
    """The mono 16 kHz file of ``item`` for ``ear`` and ``kind`` (reference: one per scene)."""
    name = item.signal if kind == "msbg" else item.scene
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
            rows[ear].append([item.signal, duration, str(wav), item.listener, words])
            rows["binaural"].append([f"{ear}_{item.signal}", duration, str(wav), item.listener,
                                     words])
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
