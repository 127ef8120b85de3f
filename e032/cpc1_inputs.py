"""Read and check the CPC1 inputs of one track before any long work starts.

Everything here is cheap (JSON files and WAV headers): a missing dataset folder, a malformed JSON, a
listener missing from the listener file, a missing WAV or a WAV with the wrong sample rate, channel
count or length is reported at once, in one error that names the file(s) and what was expected,
instead of hours into the MSBG stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import soundfile as sf

from e032.io import read_json
from e032.manifests import MIN_ASR_INPUT_S, REQUIRED_KEYS
from e032.tracks import TrackPaths

MAX_LISTED = 5  # problems named in one error message; the total is always given
AUDIOGRAM_KEYS = ("audiogram_cfs", "audiogram_levels_l", "audiogram_levels_r")


def check_dataset_folders(paths: TrackPaths, root: str | Path | None = None) -> None:
    """Check that the unpacked training and test archives exist.

    Parameters
    ----------
    paths : the resolved track paths.
    root : ``path.root`` as configured (for the message only).

    Raises
    ------
    FileNotFoundError
        Naming the folder expected and what was found in its parent.
    """
    for folder, archive in (
        (paths.train_data, "clarity_CPC1_data.v1_1.tgz"),
        (paths.test_data, "clarity_CPC1_data.test.v1.tgz"),
    ):
        if (folder / "metadata").is_dir():
            continue
        parent = folder.parent
        # ignore our own exp_folder (Hydra creates its log folder there before the run starts)
        found = (
            sorted(
                p.name
                for p in parent.iterdir()
                if p not in paths.exp_folder.parents and p != paths.exp_folder
            )[:10]
            if parent.is_dir()
            else None
        )
        where = f"path.root={root}: " if root is not None else ""
        what = (
            f"{parent} does not exist"
            if found is None
            else f"{parent} contains {found}"
            if found
            else f"{parent} does not exist or is empty"
        )
        raise FileNotFoundError(
            f"{where}expected the folder {folder} with a metadata/ subfolder (the unpacked "
            f"{archive}), but {what}. Set path.root to the folder that holds "
            "clarity_CPC1_data_train/ and clarity_CPC1_data_test/"
        )


def check_output_folders(paths: TrackPaths) -> None:
    """Refuse output folders inside the dataset: outputs would land among (or onto) the inputs.

    Raises
    ------
    ValueError
        Naming the setting, its folder and the dataset folder that holds it.
    """
    inputs = {
        "the training archive": paths.train_data,
        "the test archive": paths.test_data,
        "path.test_labels": paths.test_labels_dir,
    }
    outputs = {"path.exp_folder": paths.exp_folder, "path.msbg_output_dir": paths.msbg_dir("train").parent}
    for setting, folder in outputs.items():
        for what, data in inputs.items():
            if folder == data or data in folder.parents:
                raise ValueError(
                    f"{setting}={folder} is inside {what} {data}: outputs must not be "
                    f"written into the dataset; set {setting} to a folder outside it"
                )


def read_response_list(path: str | Path, what: str = "CPC1 response list") -> list:
    """Read a response list: the one reader of ``CPC1.*.json``, ``CEC*.json`` and ``CPC3.*.json``.

    Checks only that the file is a JSON list; :func:`load_records` (prepare) and
    :func:`e032.evaluation.read_labels` (evaluate) check the records for what they use.

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is missing, not JSON, or not a list.
    """
    records = read_json(path, what=what)
    if not isinstance(records, list):
        raise ValueError(
            f"{path}: expected a JSON list of response records, got " f"{type(records).__name__}"
        )
    return records


def load_records(path: Path) -> list[dict]:
    """Read a CPC1 response list (``CPC1.<split><track>.json``) and check its schema.

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is missing, not JSON, not a list of objects with the keys ``signal``, ``scene``,
        ``listener`` and ``prompt``, or if a signal ID repeats.
    """
    records = read_response_list(path)
    seen: set[str] = set()
    for index, record in enumerate(records):
        missing = [
            key
            for key in REQUIRED_KEYS
            if not isinstance(record, dict) or not isinstance(record.get(key), str)
        ]
        if missing:
            raise ValueError(
                f"{path}: record {index} lacks the string field(s) {missing} "
                f"(each record needs {list(REQUIRED_KEYS)})"
            )
        if record["signal"] in seen:
            raise ValueError(f"{path}: signal {record['signal']} is listed twice")
        seen.add(record["signal"])
    return records


def check_listeners(records: Sequence[dict], records_path: Path, listeners_path: Path) -> None:
    """Check that every listener of ``records`` has both audiograms in the listener file.

    Raises
    ------
    FileNotFoundError, ValueError
        If the listener file is missing or malformed, or lacks a listener (named, with the
        response list that uses it).
    """
    listeners = read_json(listeners_path, what="listener file")
    if not isinstance(listeners, dict):
        raise ValueError(f"{listeners_path}: expected a JSON object keyed by listener ID")
    used = sorted({record["listener"] for record in records})
    absent = [name for name in used if name not in listeners]
    if absent:
        raise ValueError(
            f"{len(absent)} listener(s) of {records_path} are missing from {listeners_path}: "
            f"{absent[:MAX_LISTED]}"
        )
    for name in used:
        entry = listeners[name]
        lacking = [k for k in AUDIOGRAM_KEYS if not isinstance(entry, dict) or k not in entry]
        if lacking:
            raise ValueError(f"{listeners_path}: listener {name} lacks {lacking}")


def check_wav_headers(files: Iterable[Path], sample_rate: int, n_channels: int, trim_s: float) -> int:
    """Check existence, rate, channels and length of WAVs from their headers only.

    A file must be longer than the ``trim_s`` seconds dropped at its start plus the
    ``MIN_ASR_INPUT_S`` the ASR needs.

    Returns
    -------
    Number of files checked.

    Raises
    ------
    FileNotFoundError
        If any file is missing (count and the first few named).
    ValueError
        If any file is unreadable, has another rate or channel count, or is too short.
    """
    missing, bad, n_files = [], [], 0
    for path in files:
        n_files += 1
        if not path.is_file():
            missing.append(str(path))
            continue
        problem = _header_problem(path, sample_rate, n_channels, trim_s)
        if problem:
            bad.append(problem)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} input WAV file(s) not found: " f"{', '.join(missing[:MAX_LISTED])}"
        )
    if bad:
        raise ValueError(
            f"{len(bad)} input WAV file(s) have the wrong format: " f"{'; '.join(bad[:MAX_LISTED])}"
        )
    return n_files


def _header_problem(path: Path, sample_rate: int, n_channels: int, trim_s: float) -> str:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        return f"{path}: cannot read ({err})"
    if info.samplerate != sample_rate:
        return f"{path}: sample rate is {info.samplerate} Hz, expected {sample_rate} Hz"
    if info.channels != n_channels:
        return f"{path}: has {info.channels} channel(s), expected {n_channels}"
    if info.frames < (trim_s + MIN_ASR_INPUT_S) * sample_rate:
        return (
            f"{path}: is {info.frames / sample_rate:.3f} s long, expected more than the "
            f"{trim_s} s dropped at the start + {MIN_ASR_INPUT_S} s for the ASR"
        )
    return ""


def check_lengths(pairs: Iterable[tuple[Path, Path]], sample_rate: int, tolerance_s: float) -> None:
    """Check that each file is as long as its reference, within ``tolerance_s``.

    A hearing-aid output of CPC1 is as long as its scene's target (140 samples shorter in the
    real sample); one much shorter is truncated (libsndfile reads the samples that are there,
    whatever the header says), one much longer belongs to another scene. The headers must have
    been checked (:func:`check_wav_headers`).

    Raises
    ------
    ValueError
        Naming the files, both lengths and the setting that sets the tolerance.
    """
    frames: dict[Path, int] = {}

    def n_frames(path: Path) -> int:
        if path not in frames:
            frames[path] = sf.info(str(path)).frames
        return frames[path]

    limit = tolerance_s * sample_rate
    bad = [
        f"{path} has {n_frames(path)} samples, its reference {ref.name} {n_frames(ref)}"
        for path, ref in pairs
        if abs(n_frames(path) - n_frames(ref)) > limit
    ]
    if bad:
        raise ValueError(
            f"{len(bad)} hearing-aid output(s) differ in length from their scene reference by more "
            f"than input_length_tolerance_s={tolerance_s} s (truncated or from another scene?): "
            f"{'; '.join(bad[:MAX_LISTED])}. Repair the file(s), or raise input_length_tolerance_s"
        )
