"""Dataset ID schemes: what a signal, scene, listener or system ID may look like.

IDs of the response lists become file names (``<signal>.wav``, ``<scene>_target_anechoic.wav``,
``<signal>_HL-output.wav``), so an ID such as ``../x`` or an absolute path would read or write
outside the dataset and the experiment folder. Every ID is therefore checked against its dataset's
pattern before any work starts, and in any case must be a plain file-name component.

CPC1 IDs are ``S08510`` (scene), ``L0239`` (listener), ``E001`` (system) and
``S08510_L0239_E001`` (signal = scene_listener_system). Another dataset (CPC2, CPC3 with opaque
hash IDs) adds its own :class:`IdScheme` to :data:`ID_SCHEMES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ID_FIELDS = ("signal", "scene", "listener", "system")
SAFE_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # no separator, no leading dot
MAX_SHOWN = 5


@dataclass(frozen=True)
class IdScheme:
    """The ID patterns of one dataset.

    Attributes
    ----------
    name : dataset name, for messages.
    patterns : ID field -> regular expression the whole ID must match.
    signal_parts : fields whose values, joined by ``_``, make the signal ID (empty: opaque IDs).
    """

    name: str
    patterns: Mapping[str, str]
    signal_parts: tuple[str, ...] = ()
    _compiled: dict[str, re.Pattern] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", {k: re.compile(v) for k, v in self.patterns.items()})

    def problem(self, id_field: str, value: object) -> str:
        """Why ``value`` is not a valid ``id_field`` ID ("" if it is).

        Examples
        --------
        >>> CPC1_IDS.problem("scene", "S00101")
        ''
        >>> CPC1_IDS.problem("scene", "../S00101")
        "scene '../S00101' does not match S\\\\d{5}"
        """
        if not isinstance(value, str):
            return f"{id_field} {value!r} is not a string"
        pattern = self._compiled.get(id_field)
        if pattern is not None and not pattern.fullmatch(value):
            return f"{id_field} {value!r} does not match {pattern.pattern}"
        if not SAFE_COMPONENT.fullmatch(value) or ".." in value:
            return f"{id_field} {value!r} is not a plain file name ({SAFE_COMPONENT.pattern})"
        return ""

    def record_problems(self, record: Mapping) -> list[str]:
        """Problems of the ID fields present in one response record (signal consistency included)."""
        problems = [self.problem(k, record[k]) for k in ID_FIELDS if k in record]
        problems = [p for p in problems if p]
        if not problems and self.signal_parts and all(k in record for k in self.signal_parts):
            expected = "_".join(record[k] for k in self.signal_parts)
            if record["signal"] != expected:
                problems.append(
                    f"signal {record['signal']!r} is not " f"{'_'.join(self.signal_parts)} = {expected!r}"
                )
        return problems


CPC1_IDS = IdScheme(
    name="CPC1",
    patterns={
        "signal": r"S\d{5}_L\d{4}_E\d{3}",
        "scene": r"S\d{5}",
        "listener": r"L\d{4}",
        "system": r"E\d{3}",
    },
    signal_parts=("scene", "listener", "system"),
)

ID_SCHEMES: dict[str, IdScheme] = {"CPC1": CPC1_IDS}


def check_record_ids(records: Sequence[Mapping], source: Path, scheme: IdScheme = CPC1_IDS) -> None:
    """Check the IDs of every record of a response list against ``scheme``.

    Raises
    ------
    ValueError
        Naming the file, the count of bad records and the first few problems.
    """
    bad = []
    for index, record in enumerate(records):
        problems = scheme.record_problems(record)
        if problems:
            bad.append(f"record {index}: {'; '.join(problems)}")
    if bad:
        raise ValueError(
            f"{source}: {len(bad)} record(s) have IDs that are not {scheme.name} IDs "
            f"(they become file names): {' | '.join(bad[:MAX_SHOWN])}"
        )
