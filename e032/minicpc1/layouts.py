"""The mini dataset in the CPC2 or CPC3 layout, made from a mini-CPC1 generation.

A mini-CPC1 of the same configuration is generated into a scratch folder (``<root>/.cpc1_source``,
removed afterwards) and re-packaged: the same TTS scenes, hearing-aid outputs, listeners and
labels, written under the real CPC2 / CPC3 folder and file names at 32 kHz 16-bit PCM.

* **Subsets.** Training scenes alternate between ``CEC1`` and ``CEC2``; each subset is numbered
  from its own start, so that about half of the scene IDs occur in both subsets with different
  audio (the CPC3 training list has 290 such IDs). Test scenes become CPC2 evaluation scenes
  (``CEC2`` only) or the CPC3 development and evaluation sets (``CEC3``, hashed IDs).
* **CPC2 partitions.** Listeners are dealt into three groups; ``train.N`` keeps the training signals
  of listeners outside group N and ``eval.N`` the test signals of group N (unseen listeners).
* **Levels.** Samples keep their digital values (resampled, clipped to 16 bits). The labels were
  made under MSBG's 0 dBFS = 120 dB SPL; read with CPC2/CPC3's 100 dB SPL the same files are
  20 dB quieter. CPC3 dev/eval references get a random gain (-12...0 dB): not level-matched.
* **Labels** of the evaluation lists go to ``<root>/labels/`` (our convention; the real label
  archives' inner layout was not verified).

See docs/mini_cpc1.md ("Other layouts") and docs/datasets.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import time
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly

from e032.io import atomic_path, read_json, write_json_atomic
from e032.minicpc1.generator import _config_record, _write_wav, generate
from e032.minicpc1.presets import MiniCPC1Config

logger = logging.getLogger(__name__)

LAYOUTS: Final[tuple[str, ...]] = ("cpc1", "cpc2", "cpc3")
LAYOUT_VERSION: Final[int] = 1  # bump whenever the same configuration would give other files
SOURCE_SAMPLE_RATE: Final[int] = 44100  # Hz, the mini-CPC1 audio
TARGET_SAMPLE_RATE: Final[int] = 32000  # Hz, CPC2/CPC3 audio (16-bit PCM)
RESAMPLE_UP, RESAMPLE_DOWN = 320, 441  # 32000 / 44100 in lowest terms
PCM16_MAX: Final[float] = 1.0 - 2.0**-15  # largest 16-bit sample value
FIRST_SCENE_NUMBER: Final[int] = 8501  # CPC2/CPC3 scene IDs start near S08501 in the real data
HASH_ID_CHARS: Final[int] = 24  # CPC3 dev/eval signal IDs: 24 lower-case hexadecimal digits
DEV_REF_GAIN_RANGE_DB: Final[tuple[float, float]] = (-12.0, 0.0)
N_CPC2_PARTITIONS: Final[int] = 3
LABEL_KEYS: Final[frozenset[str]] = frozenset({"hits", "correctness", "response"})
# WHO 2021 grades by better-ear 4-frequency average (0.5, 1, 2, 4 kHz), cut to CPC3's three values
SEVERITY_UPPER_DB_HL: Final[tuple[tuple[float, str], ...]] = ((35.0, "Mild"), (50.0, "Moderate"))
SEVERE_LABEL: Final[str] = "Moderately severe"
FOUR_FREQUENCY_INDEX: Final[tuple[int, ...]] = (1, 2, 3, 5)  # 500, 1000, 2000, 4000 Hz


def generate_layout(cfg: MiniCPC1Config, root: str | Path, layout: str = "cpc1", force: bool = False) -> dict:
    """Generate the mini dataset under ``root`` in the ``layout`` of CPC1, CPC2 or CPC3.

    ``cpc1`` is :func:`e032.minicpc1.generator.generate` itself (same files, byte for byte).

    Returns
    -------
    The summary: counts per list, ``layout``, ``reused``, ``wall_s``.

    Raises
    ------
    ValueError
        For an unknown layout.
    RuntimeError
        If espeak-ng or flite is not installed.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {list(LAYOUTS)}")
    if layout == "cpc1":
        return generate(cfg, root, force=force) | {"layout": "cpc1"}
    t_start = time.perf_counter()
    root = Path(root).expanduser().resolve()
    marker = root / "latent" / "layout.json"
    stamp = {"layout": layout, "layout_version": LAYOUT_VERSION, **_config_record(cfg)}
    if not force and marker.is_file() and read_json(marker).get("config") == stamp:
        logger.info("mini %s in %s is complete and up to date: reused", layout, root)
        return read_json(marker)["summary"] | {"reused": True, "root": str(root)}
    marker.unlink(missing_ok=True)  # written last: marks a complete run
    source = root / ".cpc1_source"
    generate(cfg, source, force=True)
    plan = _plan(source, cfg.seed, layout)
    _fresh(root / "labels")
    counts = (
        _write_cpc2(source, root, plan) if layout == "cpc2" else _write_cpc3(source, root, plan, cfg.seed)
    )
    for name in ("signals.json", "listeners.json", "config.json", "ceiling.json"):
        (root / "latent").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "latent" / name, root / "latent" / name)
    write_json_atomic(
        root / "latent" / "id_map.json",
        [{"subset": s.subset, "signal": s.signal, "source_signal": s.source["signal"]} for s in plan],
    )
    shutil.rmtree(source)
    summary = {"layout": layout, **counts, "n_signals": len(plan)}
    write_json_atomic(marker, {"config": stamp, "summary": summary})
    return summary | {"reused": False, "root": str(root), "wall_s": round(time.perf_counter() - t_start, 2)}


class _Signal:
    """One source signal and its new identity (subset, scene, signal, split)."""

    def __init__(self, source: dict, subset: str, scene: str, signal: str, split: str) -> None:
        self.source, self.subset, self.scene, self.signal, self.split = (source, subset, scene, signal, split)


def _plan(source: Path, seed: int, layout: str) -> list[_Signal]:
    """New subset, scene and signal IDs and split of every source signal."""
    train = read_json(source / "clarity_CPC1_data_train" / "metadata" / "CPC1.train.json")
    test = read_json(source / "test_listener_responses" / "CPC1.test.json")
    train_scenes = sorted({r["scene"] for r in train})
    test_scenes = sorted({r["scene"] for r in test})
    cec1 = train_scenes[0::2]
    cec2 = train_scenes[1::2]
    # CEC2 numbering starts half-way through CEC1's: about half of the scene IDs collide
    new_scene = {s: f"S{FIRST_SCENE_NUMBER + i:05d}" for i, s in enumerate(cec1)}
    first_cec2 = FIRST_SCENE_NUMBER + len(cec1) // 2
    new_scene |= {s: f"S{first_cec2 + i:05d}" for i, s in enumerate(cec2 + test_scenes)}
    subset = {s: "CEC1" for s in cec1} | {s: "CEC2" for s in cec2}
    listeners = sorted({r["listener"] for r in train + test})
    group = {name: i % N_CPC2_PARTITIONS for i, name in enumerate(listeners)}
    plan = []
    for record in train:
        sub, scene = subset[record["scene"]], new_scene[record["scene"]]
        if layout == "cpc2":
            parts = [f"train.{n + 1}" for n in range(N_CPC2_PARTITIONS) if group[record["listener"]] != n]
            signal = f"{scene}_{record['listener']}_{record['system']}"
        else:
            parts = ["train"]
            signal = f"{sub}_{record['system']}_{scene}_{record['listener']}"
        plan += [_Signal(record, sub, scene, signal, part) for part in parts]
    for record in test:
        scene = new_scene[record["scene"]]
        if layout == "cpc2":
            part = f"eval.{group[record['listener']] + 1}"
            plan.append(
                _Signal(record, "CEC2", scene, f"{scene}_{record['listener']}_{record['system']}", part)
            )
        else:
            part = "dev" if test_scenes.index(record["scene"]) % 3 == 0 else "eval"
            digest = hashlib.sha256(f"{seed}:{record['signal']}".encode()).hexdigest()
            plan.append(_Signal(record, "CEC3", scene, digest[:HASH_ID_CHARS], part))
    return plan


def _to_32k_pcm16(path: Path, gain_db: float = 0.0) -> npt.NDArray[np.float64]:
    """A 44.1 kHz WAV resampled to 32 kHz, scaled by ``gain_db`` and clipped to 16-bit range."""
    signal, rate = sf.read(str(path), dtype="float64", always_2d=True)
    if rate != SOURCE_SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate is {rate} Hz, expected {SOURCE_SAMPLE_RATE} Hz")
    out = resample_poly(signal, RESAMPLE_UP, RESAMPLE_DOWN, axis=0) * 10 ** (gain_db / 20)
    return np.clip(out, -1.0, PCM16_MAX)


def _write_audio(source_wav: Path, path: Path, gain_db: float = 0.0) -> None:
    if not path.is_file():  # a reference (or CPC2 output) shared by several records: once
        _write_wav(path, _to_32k_pcm16(source_wav, gain_db), TARGET_SAMPLE_RATE, "PCM_16")


def _source_paths(source: Path, sig: _Signal) -> tuple[Path, Path]:
    """The mini-CPC1 HA output and reference of ``sig``."""
    archive = "train" if sig.split.startswith("train") else "test"
    data = source / f"clarity_CPC1_data_{archive}" / "clarity_data"
    return (
        data / "HA_outputs" / archive / f"{sig.source['signal']}.wav",
        data / "scenes" / f"{sig.source['scene']}_target_anechoic.wav",
    )


def _write_cpc2(source: Path, root: Path, plan: list[_Signal]) -> dict:
    """CPC2 v1_1: ``HA_outputs/signals/<CEC>/``, ``scenes/<CEC>/``, CEC lists, listeners.json."""
    data = _fresh(root / "clarity_CPC2_data") / "clarity_data"
    lists: dict[str, list[dict]] = {}
    for sig in plan:
        ha_wav, ref_wav = _source_paths(source, sig)
        _write_audio(ha_wav, data / "HA_outputs" / "signals" / sig.subset / f"{sig.signal}.wav")
        _write_audio(ref_wav, data / "scenes" / sig.subset / f"{sig.scene}_target_ref.wav")
        kind, n = sig.split.split(".")
        name = f"{sig.subset}.{'train' if kind == 'train' else 'test'}.{n}"
        lists.setdefault(name, []).append(sig.source | {"scene": sig.scene, "signal": sig.signal})
    meta = data / "metadata"
    for name, records in sorted(lists.items()):
        records.sort(key=lambda r: r["signal"])
        if ".test." in name:
            write_json_atomic(root / "labels" / f"{name}.json", records, indent=4)
            records = [{k: v for k, v in r.items() if k not in LABEL_KEYS} for r in records]
        write_json_atomic(meta / f"{name}.json", records, indent=4)
    listeners = read_json(source / "clarity_CPC1_data_train" / "metadata" / "listeners.CPC1_train.json")
    write_json_atomic(meta / "listeners.json", listeners)
    return {f"n_{name}": len(records) for name, records in sorted(lists.items())}


def _write_cpc3(source: Path, root: Path, plan: list[_Signal], seed: int) -> dict:
    """CPC3: ``{train,dev,eval}/{signals,references}/``, ``CPC3.<split>.json``, listeners.csv."""
    data = _fresh(root / "clarity_CPC3_data") / "clarity_data"
    listeners = read_json(source / "clarity_CPC1_data_train" / "metadata" / "listeners.CPC1_train.json")
    severity = {name: severity_of(entry) for name, entry in listeners.items()}
    lists: dict[str, list[dict]] = {}
    for index, sig in enumerate(plan):
        ha_wav, ref_wav = _source_paths(source, sig)
        folder = data / sig.split
        _write_audio(ha_wav, folder / "signals" / f"{sig.signal}.wav")
        if sig.split == "train":
            _write_audio(ref_wav, folder / "references" / f"{sig.subset}_{sig.scene}_ref.wav")
        else:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 3, index]))
            _write_audio(
                ref_wav,
                folder / "references" / f"{sig.signal}_ref.wav",
                float(rng.uniform(*DEV_REF_GAIN_RANGE_DB)),
            )
        r = sig.source
        record = {
            "signal": sig.signal,
            "prompt": r["prompt"],
            "response": r["response"],
            "n_words": r["n_words"],
            "words_correct": r["hits"],
            "correctness": r["correctness"],
        }
        if sig.split != "train":
            record["hearing_loss"] = severity[r["listener"]]
        lists.setdefault(sig.split, []).append(record)
    meta = data / "metadata"
    for split, records in sorted(lists.items()):
        records.sort(key=lambda r: r["signal"])
        if split != "train":
            write_json_atomic(root / "labels" / f"CPC3.{split}.json", records, indent=4)
            records = [{k: r[k] for k in ("signal", "prompt", "n_words", "hearing_loss")} for r in records]
        write_json_atomic(meta / f"CPC3.{split}.json", records, indent=4)
    with atomic_path(meta / "listeners.csv") as tmp:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([("listener_id", "severity"), *sorted(severity.items())])
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return {f"n_{split}": len(records) for split, records in sorted(lists.items())}


def severity_of(listener: dict) -> str:
    """CPC3-style severity of a listener record: WHO 2021 grade of the better-ear average.

    The better-ear 4-frequency average (0.5, 1, 2, 4 kHz) below 35 dB HL is ``Mild`` (normal
    hearing included), below 50 ``Moderate``, else ``Moderately severe`` (CPC3's three values).

    Examples
    --------
    >>> severity_of({"audiogram_levels_l": [10, 40, 40, 40, 50, 40, 60, 60],
    ...              "audiogram_levels_r": [20, 30, 30, 40, 50, 40, 60, 60]})
    'Moderate'
    """
    averages = [
        np.mean([listener[key][i] for i in FOUR_FREQUENCY_INDEX])
        for key in ("audiogram_levels_l", "audiogram_levels_r")
    ]
    better_ear_db_hl = float(min(averages))
    for upper_db_hl, label in SEVERITY_UPPER_DB_HL:
        if better_ear_db_hl < upper_db_hl:
            return label
    return SEVERE_LABEL


def _fresh(folder: Path) -> Path:
    """Remove ``folder`` (an earlier generation's) and return it, ready to be written."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder
