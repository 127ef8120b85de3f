"""What each output was made from: a per-stage record of inputs, parameters and outputs.

A file's existence is not proof that it is up to date: its input may have been repaired, a
listener's audiogram fixed, or the file it was made from redone with other settings. Each stage
therefore keeps, next to its outputs, a JSON record ``<stage>_record<tag>.json`` with one entry per
output unit (a signal, a scene, ...)::

    {"inputs": [fingerprint, ...], "params": {...}, "outputs": [fingerprint, ...]}

where a fingerprint is ``[size, mtime_ns, sha256]``. An entry is *current* when its parameters
equal this run's and every input and output still has that content: same size and modification
time, or, if only the time changed (a copy, a ``touch``), the same SHA-256. Anything else is redone,
so a redone input makes everything downstream of it stale too (the 16 kHz files record the MSBG
output they were made from).

Each writer has its own file: a sharded run writes ``<stage>_record.shard-<i>-of-<n>.json``, an
unsharded run ``<stage>_record.json`` (and then deletes the shard files it supersedes), so jobs
sharing a folder never overwrite each other's records. Records are flushed atomically every
``flush_s`` seconds and when the stage ends (also on an error), so a killed run loses at most the
last few entries, whose outputs are then redone with identical bytes.

The records hold file times: unlike the outputs, they are bookkeeping and differ between two
fresh runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e032.io import read_json, write_json_atomic

logger = logging.getLogger(__name__)

RECORD_VERSION = 1
Fingerprint = list  # [size, mtime_ns, sha256]


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def fingerprint(path: Path) -> Fingerprint:
    """``[size, mtime_ns, sha256]`` of ``path`` (hashed once per process while unchanged)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = file_sha256(path)
    return [stat.st_size, stat.st_mtime_ns, _SHA_CACHE[key]]


def still_matches(path: Path, stored: Sequence) -> Fingerprint | None:
    """The fingerprint of ``path`` if its content is still ``stored``'s, else None.

    Same size and time: unchanged (no hashing). Same size, other time: hashed and compared.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    size, mtime_ns, sha = stored
    if stat.st_size != size:
        return None
    if stat.st_mtime_ns == mtime_ns:
        return list(stored)
    current = fingerprint(path)
    return current if current[2] == sha else None


def check_or_write_stamp(path: Path, settings: dict[str, Any], way_out: str = "") -> None:
    """Record the settings that made some outputs; refuse to mix outputs of other settings.

    Parameters
    ----------
    path : the stamp file (JSON) next to the outputs.
    settings : this run's settings (JSON-able).
    way_out : what to do instead, for the message (default: use the stored values, or delete
        the folder holding ``path``).

    Raises
    ------
    ValueError
        If ``path`` exists with other settings, naming each changed setting, both values and
        the way out.
    """
    if path.is_file():
        stored = read_json(path, what="settings stamp")
        if stored != _canonical(settings):
            changes = "; ".join(setting_changes(stored, _canonical(settings)))
            way_out = way_out or f"delete {path.parent} to redo it"
            raise ValueError(
                f"{path.parent} holds outputs made with other settings ({changes}): "
                f"run with the stored values, or {way_out}"
            )
        return
    write_json_atomic(path, settings)


def setting_changes(stored: Any, current: Any, name: str = "") -> list[str]:
    """``"<setting>: stored <a>, this run <b>"`` for each leaf that differs.

    Examples
    --------
    >>> setting_changes({"MSBGEar": {"ahr": 20, "src_pos": "ff"}},
    ...                 {"MSBGEar": {"ahr": 20, "src_pos": "df"}})
    ["MSBGEar.src_pos: stored 'ff', this run 'df'"]
    """
    if isinstance(stored, dict) and isinstance(current, dict):
        changes = []
        for key in sorted(set(stored) | set(current), key=str):
            sub = f"{name}.{key}" if name else str(key)
            changes += setting_changes(stored.get(key, "<unset>"), current.get(key, "<unset>"), sub)
        return changes
    return [] if stored == current else [f"{name}: stored {stored!r}, this run {current!r}"]


def settings_digest(settings: Any) -> str:
    """Short, order-independent digest of JSON-able settings (for the entries' ``params``)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def writer_tag(shard_index: int, num_shards: int) -> str:
    """``""`` for an unsharded run, ``".shard-<i>-of-<n>"`` (1-based) for a shard."""
    return "" if num_shards == 1 else f".shard-{shard_index + 1}-of-{num_shards}"


@dataclass
class Unit:
    """One output unit of a stage: its record key, input files, parameters and output files.

    ``job`` is what the stage runs to make the outputs; ``input_stats`` (size, mtime_ns of each
    input) are taken by :meth:`StageRecord.stale` before the work, to notice an input that
    changes while it is processed.
    """

    key: str
    inputs: tuple[Path, ...]
    params: Any
    outputs: tuple[Path, ...]
    job: Any = None
    input_stats: list[tuple[int, int]] = field(default_factory=list)


class StageRecord:
    """The record of one stage's outputs in one folder, as seen and written by one writer.

    Use as a context manager: the record is flushed when the block ends, also on an error.

    Parameters
    ----------
    folder : the folder holding the stage's outputs (and its record files).
    stage : stage name (``msbg``, ``resample``, ...), the record's file-name prefix.
    tag : :func:`writer_tag` of this writer.
    flush_s : seconds between automatic flushes while entries are added.
    """

    def __init__(self, folder: Path, stage: str, tag: str = "", flush_s: float = 30.0) -> None:
        self.folder, self.stage, self.tag = Path(folder), stage, tag
        self.path = self.folder / f"{stage}_record{tag}.json"
        self.flush_s = flush_s
        self._candidates = self._load_all()
        self._own = self._load(self.path) if self.path.is_file() else {}
        self._entries: dict[str, dict] = {}
        self._last_flush = time.monotonic()

    # --- reading ------------------------------------------------------------------------------
    def _load(self, path: Path) -> dict[str, dict]:
        document = read_json(path, what=f"{self.stage} record")
        if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
            logger.warning(
                "ignoring %s (not a version-%d record): its outputs are redone", path, RECORD_VERSION
            )
            return {}
        entries = document.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _load_all(self) -> dict[str, list[dict]]:
        candidates: dict[str, list[dict]] = {}
        for path in sorted(self.folder.glob(f"{self.stage}_record*.json")):
            for key, entry in self._load(path).items():
                candidates.setdefault(key, []).append(entry)
        return candidates

    def is_current(self, key: str, inputs: Sequence[Path], params: Any, outputs: Sequence[Path]) -> bool:
        """True if a recorded entry for ``key`` matches ``params``, ``inputs`` and ``outputs``.

        A current entry is kept (with refreshed file times) in what this writer writes.
        """
        params = _canonical(params)
        for entry in self._candidates.get(key, []):
            if entry.get("params") != params:
                continue
            found_in = _match_all(inputs, entry.get("inputs"))
            found_out = _match_all(outputs, entry.get("outputs"))
            if found_in is not None and found_out is not None:
                self._entries[key] = {"inputs": found_in, "params": params, "outputs": found_out}
                return True
        return False

    def stale(self, units: Iterable[Unit]) -> list[Unit]:
        """The units whose outputs are missing or not current (to be redone), in order."""
        todo = []
        for unit in units:
            if not self.is_current(unit.key, unit.inputs, unit.params, unit.outputs):
                unit.input_stats = [_stat(p) for p in unit.inputs]
                todo.append(unit)
        return todo

    # --- writing ------------------------------------------------------------------------------
    def done(self, unit: Unit) -> None:
        """Record a unit of :meth:`stale` whose outputs were just written.

        If an input changed while it was processed, nothing is recorded: it is redone next time.
        """
        inputs = [fingerprint(Path(p)) for p in unit.inputs]
        if [tuple(fp[:2]) for fp in inputs] != unit.input_stats:
            logger.warning(
                "%s changed while it was processed: its outputs are redone next run",
                ", ".join(map(str, unit.inputs)),
            )
            return
        self.add(unit.key, inputs, unit.params, unit.outputs)

    def add(self, key: str, inputs: Sequence[Fingerprint], params: Any, outputs: Sequence[Path]) -> None:
        """Record that ``outputs`` (just written) were made from ``inputs`` with ``params``."""
        self._entries[key] = {
            "inputs": [list(fp) for fp in inputs],
            "params": _canonical(params),
            "outputs": [fingerprint(Path(p)) for p in outputs],
        }
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write this writer's record atomically (only if it changed)."""
        self._last_flush = time.monotonic()
        entries = dict(sorted(self._entries.items()))
        if entries == self._own:
            return
        write_json_atomic(
            self.path, {"version": RECORD_VERSION, "stage": self.stage, "entries": entries}, indent=None
        )
        self._own = entries

    def __enter__(self) -> StageRecord:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()
        if exc_type is None and self.tag == "":
            for shard_file in self.folder.glob(f"{self.stage}_record.shard-*.json"):
                shard_file.unlink()  # superseded: this record holds every current entry


def _stat(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _canonical(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def _match_all(paths: Sequence[Path], stored: Iterable | None) -> list[Fingerprint] | None:
    stored = list(stored) if isinstance(stored, list) else None
    if stored is None or len(stored) != len(paths):
        return None
    found = []
    for path, fp in zip(paths, stored, strict=True):
        current = still_matches(Path(path), fp) if isinstance(fp, list) and len(fp) == 3 else None
        if current is None:
            return None
        found.append(current)
    return found


class RecordSet:
    """The records of one stage in several folders (e.g. ``msbg/train`` and ``msbg/test``).

    A unit belongs to the record of the folder that holds its first output. Use as a context
    manager, like :class:`StageRecord`.
    """

    def __init__(self, folders: Iterable[Path], stage: str, tag: str = "") -> None:
        self.records = {Path(f): StageRecord(Path(f), stage, tag) for f in folders}

    def _record(self, unit: Unit) -> StageRecord:
        output = Path(unit.outputs[0])
        for folder, record in self.records.items():
            if folder in output.parents:
                return record
        raise ValueError(f"{output} is in none of the record folders {sorted(self.records)}")

    def stale(self, units: Iterable[Unit]) -> list[Unit]:
        """The units to redo (see :meth:`StageRecord.stale`), in order."""
        return [unit for unit in units if self._record(unit).stale([unit])]

    def done(self, unit: Unit) -> None:
        """Record a redone unit (see :meth:`StageRecord.done`)."""
        self._record(unit).done(unit)

    def __enter__(self) -> RecordSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for record in self.records.values():
            record.__exit__(exc_type, exc, tb)
