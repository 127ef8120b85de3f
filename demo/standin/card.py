"""The stand-in's model card: WER per condition, what it was trained on, and the shipped files.

:func:`ship` copies the final (averaged) checkpoint of a finished ``demo/make_standin.py train`` into
a folder laid out like SpeechBrain's LibriSpeech ``save/`` download (``save/CKPT+standin/`` with
``model.ckpt``, ``normalizer.ckpt``, ``counter.ckpt``, ``noam_scheduler.ckpt``, ``CKPT.yaml``; no
optimiser state), with ``tokenizer.model``, two held-out sample utterances and ``standin_card.json``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

from e032.asr.checkpoint import list_checkpoints, torch_load
from e032.io import read_json, write_csv_atomic, write_json_atomic
from e032.manifests import CSV_HEADER, read_manifest

from . import augment, degrade, voices
from .corpus import CARD_CONDITIONS, CARD_SPEECH_LEVEL_DB_SPL, DEGRADED_FRACTION

SHIPPED_CKPT_FILES: Final[tuple[str, ...]] = (
    "CKPT.yaml",
    "model.ckpt",
    "normalizer.ckpt",
    "counter.ckpt",
    "noam_scheduler.ckpt",
)
SHIPPED_CKPT_NAME: Final[str] = "CKPT+standin"
N_SAMPLES: Final[int] = 2
_WER_LINE = re.compile(r"^%WER\s+([0-9.]+)\s+\[\s*(\d+)\s*/\s*(\d+)")
_UTT_LINE = re.compile(r"^(\S+),\s*%WER\s+([0-9.]+)\s+\[")


def read_wer_file(path: Path) -> dict:
    """Overall WER (%), error and word counts, and per-utterance WERs of a SpeechBrain WER file."""
    overall, per_utt = None, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if overall is None and (m := _WER_LINE.match(line)):
            overall = {"wer_percent": float(m.group(1)), "errors": int(m.group(2)), "words": int(m.group(3))}
        elif m := _UTT_LINE.match(line):
            per_utt[m.group(1)] = float(m.group(2))
    if overall is None:
        raise ValueError(f"{path}: no '%WER' line (not a SpeechBrain WER file?)")
    return {**overall, "per_utterance": per_utt}


def final_checkpoint(save_folder: Path) -> Path:
    """The averaged final model's ``CKPT+*`` folder (written by the train step's test)."""
    for ckpt in list_checkpoints(save_folder):
        if "averaged_checkpoints" in ckpt.meta:
            return ckpt.path
    raise FileNotFoundError(f"{save_folder}: no final averaged checkpoint; run the train step to the end")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git_commit(repo: Path) -> str:
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _pick_samples(corpus: Path, per_utt: dict[str, float], ship: Path) -> list[list[str]]:
    """The first ``N_SAMPLES`` held-out clean utterances that the model transcribes without error."""
    listed = read_manifest(corpus / "card_clean.csv", required=CSV_HEADER)
    rows = [row for row in listed if per_utt.get(row.id) == 0.0][:N_SAMPLES]
    (ship / "samples").mkdir(parents=True, exist_ok=True)
    for row in rows:
        shutil.copyfile(row.wav, ship / "samples" / f"{row.id}.wav")
    return [
        [
            row.id,
            row.columns["duration"],
            f"$data_root/samples/{row.id}.wav",
            row.columns["spk_id"],
            row.columns["wrd"],
        ]
        for row in rows
    ]


def ship(build: Path, ship_dir: Path, repo: Path, stage_times: dict[str, float]) -> dict:
    """Copy the final model into ``ship_dir``, write ``standin_card.json`` there and return it."""
    corpus, train = build / "corpus", build / "train"
    source = final_checkpoint(train / "save")
    target = ship_dir / "save" / SHIPPED_CKPT_NAME
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.mkdir(parents=True)
    for name in SHIPPED_CKPT_FILES:
        shutil.copyfile(source / name, target / name)
    shutil.copyfile(train / "save" / "tokenizer.model", ship_dir / "tokenizer.model")
    wers = {name: read_wer_file(train / f"wer_card_{name}.txt") for name, *_ in CARD_CONDITIONS}
    samples = _pick_samples(corpus, wers["clean"]["per_utterance"], ship_dir)
    write_csv_atomic(
        ship_dir / "samples" / "samples.csv", ["ID", "duration", "wav", "spk_id", "wrd"], samples
    )
    state = torch_load(target / "model.ckpt")
    card = {
        "model": {
            "architecture": "transformer_cpc1.yaml + demo/asr_demo_overrides.yaml",
            "overrides": read_overrides(repo),
            "n_parameters": count_parameters(state),
            "epochs": int((target / "counter.ckpt").read_text().strip()),
            "noam_steps": int(torch_load(target / "noam_scheduler.ckpt")["n_steps"]),
        },
        "data": {
            **{k: v for k, v in read_json(corpus / "corpus.json").items() if k != "csv_sha256"},
            "text_source": "WordNet 3.0 example sentences (Debian wordnet-base), demo/standin/texts.py",
            "degraded_fraction": DEGRADED_FRACTION,
        },
        "voices": {
            "espeak_dialects": list(voices.ESPEAK_DIALECTS),
            "espeak_train_timbres": list(voices.ESPEAK_TRAIN_TIMBRES),
            "flite_timbres": list(voices.FLITE_TIMBRES),
            "heldout_timbres": list(voices.HELDOUT_TIMBRES),
            "heldout_dialects": list(voices.HELDOUT_DIALECTS),
        },
        "augmentation": {
            "offline": _constants(degrade),
            "on_the_fly": _constants(augment) | {"defaults": "demo/standin/augment.py StandinAugment()"},
        },
        "card_conditions": {
            "sets": "held-out sentences x held-out voices, one utterance per sentence",
            "msbg_speech_level_db_spl": CARD_SPEECH_LEVEL_DB_SPL,
            "audiograms_db_hl": {k: list(v) for k, v in degrade.NAMED_AUDIOGRAMS.items()},
        },
        "wer_percent": {name: w["wer_percent"] for name, w in wers.items()},
        "wer_words": {name: w["words"] for name, w in wers.items()},
        "command": "make standin",
        "commit": _git_commit(repo),
        "stage_times_s": stage_times,
        "sha256": {
            p.relative_to(ship_dir).as_posix(): sha256(p)
            for p in sorted(ship_dir.rglob("*"))
            if p.is_file() and p.name != "standin_card.json"
        },
    }
    write_json_atomic(ship_dir / "standin_card.json", card)
    return card


def count_parameters(state: dict) -> int:
    """Trainable parameters of a model state dict (buffers left out: BatchNorm statistics, positions)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked", "positional_encoding")
    return int(sum(t.numel() for k, t in state.items() if not any(b in k for b in buffers)))


def read_overrides(repo: Path) -> dict:
    """The architecture overrides (``demo/asr_demo_overrides.yaml``) as a dict."""
    from e032.asr.fine_tuning import read_overrides_file

    return read_overrides_file(str(repo / "demo" / "asr_demo_overrides.yaml"))


def _constants(module) -> dict:
    """A module's upper-case numeric and string constants (its documented settings)."""
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in vars(module).items()
        if k.isupper() and isinstance(v, int | float | str | tuple) and not k.startswith("_")
    }


def check_shipped(ship_dir: Path) -> list[str]:
    """Files whose sha256 differs from the card (empty when everything matches)."""
    card = read_json(ship_dir / "standin_card.json")
    return [
        name
        for name, digest in card["sha256"].items()
        if not (ship_dir / name).is_file() or sha256(ship_dir / name) != digest
    ]
