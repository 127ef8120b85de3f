"""Find and load E032 ASR checkpoints: SpeechBrain 0.5.x / 1.x ``save/`` folders and the HF 768-d release.

Entry point for training scripts
--------------------------------
``load_pretrained_into(hparams, save_folder=None, hf_folder=None, average=False, device=None)``
fills ``hparams["model"]`` (the ``ModuleList([CNN, Transformer, seq_lin, ctc_lin])`` of
``transformer_cpc1.yaml``) and ``hparams["normalize"]`` (``InputNormalization``) from

* ``save_folder``: a SpeechBrain ``save/`` folder (or the output folder that contains ``save/``) holding
  ``CKPT+*/`` sub-folders with ``CKPT.yaml``, ``model.ckpt``, ``normalizer.ckpt``, ``counter.ckpt``, ...,
  written by SpeechBrain 0.5.x (e.g. the LibriSpeech checkpoint the original README points to) or 1.x;
  the most recent checkpoint is used (``average=True``: the model parameters are averaged over all
  checkpoints, as the original ``infer.py`` does);
* ``hf_folder``: a local folder with the Hugging Face release files ``asr.ckpt`` and ``normalizer.ckpt``.

It returns a :class:`LoadedCheckpoint` (what was read; ``epoch`` from ``counter.ckpt`` when present, which
the caller may copy into its epoch counter). Exactly one of the two folders must be given.

What a SpeechBrain 1.x port has to take care of (``docs/original_recipe.md`` §8)
-------------------------------------------------------------------------------------------------
* parameter renames since 0.5.x (:data:`LEGACY_KEY_RENAMES`, e.g. ``mutihead_attn`` -> ``multihead_attn``);
* torch >= 2.6 loads with ``weights_only=True`` by default; the SpeechBrain files we read are plain
  dicts of tensors/ints, which that mode accepts. Files that need full unpickling are refused unless
  ``allow_pickle=True`` is passed (only for files you trust);
* ``InputNormalization`` keeps its statistics as plain attributes, not buffers, so moving the model to a
  device does not move them: :func:`load_normalizer_stats` places them on the requested device;
* strict loading with one clear error naming the first mismatching key and both shapes.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import torch
import yaml

logger = logging.getLogger(__name__)

#: Parameter-name changes between SpeechBrain 0.5.x checkpoints and the 1.x modules (substring renames,
#: the same ones SpeechBrain 1.x applies in its own checkpointer).
LEGACY_KEY_RENAMES: Final[tuple[tuple[str, str], ...]] = (
    (".mutihead_attn", ".multihead_attn"),  # decoder cross-attention, renamed in SB 1.0.1
    (".convs_intermedite", ".convs_intermediate"),  # typo fix in SB 1.x (not in the E032 model)
)

CKPT_PREFIX: Final = "CKPT"
MODEL_FILE: Final = "model.ckpt"
NORMALIZER_FILE: Final = "normalizer.ckpt"
COUNTER_FILE: Final = "counter.ckpt"
NOAM_FILE: Final = "noam_scheduler.ckpt"
META_FILE: Final = "CKPT.yaml"
HF_MODEL_FILE: Final = "asr.ckpt"


@dataclass
class LoadedCheckpoint:
    """What :func:`load_save_folder` / :func:`load_hf_folder` read.

    Attributes
    ----------
    kind : str
        ``"save"`` (SpeechBrain ``save/`` folder) or ``"hf"`` (Hugging Face release files).
    source : Path
        The folder that was read.
    recovered : Path or None
        The checkpoint whose normaliser and epoch counter were loaded (the most recent one).
    averaged : list of Path
        Checkpoints whose ``model.ckpt`` were averaged into the model (newest first); one entry when
        no averaging was asked for.
    epoch : int or None
        Epoch counter of the recovered checkpoint (``counter.ckpt``), if present.
    meta : dict
        ``CKPT.yaml`` of the recovered checkpoint.
    """

    kind: str
    source: Path
    recovered: Path | None = None
    averaged: list[Path] = field(default_factory=list)
    epoch: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        """The files the model and normaliser were read from (what a similarity depends on)."""
        if self.kind == "hf":
            candidates = [self.source / HF_MODEL_FILE, self.source / NORMALIZER_FILE]
        else:
            candidates = [Path(c) / MODEL_FILE for c in self.averaged]
            candidates += [Path(self.recovered) / NORMALIZER_FILE] if self.recovered else []
        return [path for path in candidates if path.is_file()]


@dataclass(frozen=True)
class CheckpointDir:
    """One ``CKPT+*`` folder and its ``CKPT.yaml`` meta data."""

    path: Path
    meta: dict

    @property
    def unixtime(self) -> float:
        """Save time (SpeechBrain orders checkpoints by it); -inf when absent."""
        return float(self.meta.get("unixtime", float("-inf")))


# ------------------------------------------------------------------------------------------------ files
def torch_load(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", allow_pickle: bool = False
) -> Any:
    """``torch.load`` with ``weights_only=True`` and a clear error.

    Parameters
    ----------
    path : path-like
        File written by ``torch.save``.
    map_location : str or torch.device
        Where tensors are loaded.
    allow_pickle : bool
        Retry with full unpickling (``weights_only=False``) when the safe loader refuses the file.
        Only for files you trust.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read safely (and ``allow_pickle`` is False) or is not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not allow_pickle:
            raise ValueError(
                f"{path} holds objects that torch.load(weights_only=True) refuses ({err}); "
                "pass allow_pickle=True if you trust this file"
            ) from err
        logger.warning("loading %s with full unpickling (weights_only=False)", path)
        return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not a readable torch checkpoint: {err}") from err


def read_epoch_counter(path: str | os.PathLike) -> int:
    """Read ``counter.ckpt`` (SpeechBrain ``EpochCounter``: the current epoch as plain text)."""
    text = Path(path).read_text().strip()
    try:
        return int(text)
    except ValueError as err:
        raise ValueError(f"{path}: expected an integer epoch, got {text[:40]!r}") from err


def find_save_folder(folder: str | os.PathLike) -> Path:
    """Return the ``save/`` folder given it or the output folder that contains it.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist or holds no ``CKPT+*`` sub-folder (directly or in ``save/``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"ASR checkpoint folder not found: {folder}")
    for candidate in (folder, folder / "save"):
        if candidate.is_dir() and any(p.name.startswith(CKPT_PREFIX) for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(
        f"no SpeechBrain checkpoint (CKPT+* folder) in {folder} or {folder / 'save'}; "
        "expected <output_folder>/save/CKPT+<date>/model.ckpt"
    )


def list_checkpoints(save_folder: str | os.PathLike) -> list[CheckpointDir]:
    """All complete ``CKPT+*`` folders of a ``save/`` folder, newest first.

    A folder counts when it has ``CKPT.yaml`` and ``model.ckpt``; others (an interrupted save) are
    skipped with a warning. Ordering is by the ``unixtime`` in ``CKPT.yaml``, as SpeechBrain's
    ``Checkpointer.find_checkpoints`` does without an importance key.
    """
    save_folder = find_save_folder(save_folder)
    found = []
    for path in sorted(p for p in save_folder.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX)):
        if not (path / META_FILE).is_file() or not (path / MODEL_FILE).is_file():
            logger.warning("skipping incomplete checkpoint %s (needs %s and %s)", path, META_FILE, MODEL_FILE)
            continue
        meta = yaml.safe_load((path / META_FILE).read_text()) or {}
        found.append(CheckpointDir(path=path, meta=meta))
    if not found:
        raise FileNotFoundError(
            f"no complete checkpoint (CKPT+*/{META_FILE} + {MODEL_FILE}) in {save_folder}"
        )
    return sorted(found, key=lambda c: c.unixtime, reverse=True)


# ------------------------------------------------------------------------------------------- state dicts
def rename_legacy_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply :data:`LEGACY_KEY_RENAMES` to the parameter names (order kept)."""
    renamed = {}
    for key, value in state_dict.items():
        for old, new in LEGACY_KEY_RENAMES:
            key = key.replace(old, new)
        renamed[key] = value
    return renamed


def average_state_dicts(state_dicts: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts, summed in the given order, then divided by their number.

    This is the arithmetic of SpeechBrain's ``average_state_dicts`` (running sum, one division), so an
    average over one checkpoint is the checkpoint itself, bit for bit. Integer tensors (BatchNorm's
    ``num_batches_tracked``) become float, as there; ``load_state_dict`` casts them back.
    """
    total: dict[str, torch.Tensor] | None = None
    count = 0
    for state_dict in state_dicts:
        if total is None:
            total = {k: v.detach().clone() for k, v in state_dict.items()}
        else:
            if set(state_dict) != set(total):
                raise ValueError("cannot average checkpoints with different parameter names")
            for key, value in state_dict.items():
                total[key] += value
        count += 1
    if total is None:
        raise ValueError("no state dicts to average")
    return {k: v / float(count) for k, v in total.items()}


def load_model_state(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly load ``state_dict`` (legacy keys renamed) into ``model``, with one clear error.

    Raises
    ------
    ValueError
        Naming the first missing/unexpected key or the first key whose shape differs, and ``source``.
    """
    state_dict = rename_legacy_keys(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        hint = ""
        if any("running_mean" in k for k in unexpected):
            hint = (
                " (the checkpoint has BatchNorm statistics the model lacks: build the CNN with "
                "norm=BatchNorm2d, the SpeechBrain 0.5.x default)"
            )
        raise ValueError(
            f"{source}: parameter names differ from the model built from the yaml: "
            f"{len(missing)} missing (first: {missing[:3]}), {len(unexpected)} unexpected "
            f"(first: {unexpected[:3]}){hint}"
        )
    for key, value in own.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{source}: shape mismatch for {key!r}: checkpoint {tuple(state_dict[key].shape)}, "
                f"model {tuple(value.shape)} (check the model sizes / overrides of the yaml)"
            )
    model.load_state_dict(state_dict, strict=True)


def load_normalizer_stats(
    normalize: torch.nn.Module, path: str | os.PathLike, device: str | torch.device | None = None
) -> None:
    """Load a ``normalizer.ckpt`` (0.5.x or 1.x layout) into SpeechBrain 1.x ``InputNormalization``.

    The 0.5.x file is ``{count, glob_mean, glob_std, spk_dict_mean, spk_dict_std, spk_dict_count}``; 1.x
    writes the first three. Only those three are used (global normalisation).

    Raises
    ------
    ValueError
        If a key is missing or the statistics are not 1-D tensors of equal length.
    """
    stats = torch_load(path, map_location="cpu")
    if not isinstance(stats, Mapping) or not {"count", "glob_mean", "glob_std"} <= set(stats):
        raise ValueError(
            f"{path}: expected a dict with count, glob_mean, glob_std; got "
            f"{sorted(stats) if isinstance(stats, Mapping) else type(stats).__name__}"
        )
    mean, std = stats["glob_mean"], stats["glob_std"]
    if not (torch.is_tensor(mean) and torch.is_tensor(std) and mean.ndim == 1 and mean.shape == std.shape):
        raise ValueError(f"{path}: glob_mean/glob_std must be 1-D tensors of equal length")
    normalize._load_statistics_dict({"count": int(stats["count"]), "glob_mean": mean, "glob_std": std})
    if device is not None:
        normalize.to(device)  # InputNormalization.to moves its (non-buffer) statistics too


# ------------------------------------------------------------------------------------------- loaders
def load_save_folder(
    model: torch.nn.Module,
    normalize: torch.nn.Module | None,
    save_folder: str | os.PathLike,
    average: bool = True,
    device: str | torch.device | None = None,
) -> LoadedCheckpoint:
    """Load a SpeechBrain ``save/`` folder as the original ``infer.py`` (``init_evaluation``) does.

    The most recent checkpoint is recovered (normaliser statistics and epoch counter); the model gets
    the average of ``model.ckpt`` over all checkpoints (``average=True``, newest first) or the most
    recent one only (``average=False``, what a training run resuming from the folder loads).

    Parameters
    ----------
    model : torch.nn.Module
        ``ModuleList([CNN, Transformer, seq_lin, ctc_lin])``.
    normalize : InputNormalization or None
        Receives ``normalizer.ckpt`` of the most recent checkpoint (skipped when None).
    save_folder : path-like
        The ``save/`` folder or the output folder that contains it.
    average : bool
        Average the model over all checkpoints.
    device : str or torch.device, optional
        Where tensors are loaded (default CPU).

    Raises
    ------
    FileNotFoundError
        If the folder, a checkpoint or its ``normalizer.ckpt`` is missing.
    ValueError
        If parameter names or shapes do not match the model.
    """
    checkpoints = list_checkpoints(save_folder)
    newest = checkpoints[0]
    chosen = checkpoints if average else [newest]
    map_location = device if device is not None else "cpu"
    state = average_state_dicts(
        rename_legacy_keys(torch_load(c.path / MODEL_FILE, map_location=map_location)) for c in chosen
    )
    load_model_state(model, state, f"{newest.path.parent} ({len(chosen)} checkpoint(s))")
    if normalize is not None:
        norm_path = newest.path / NORMALIZER_FILE
        if not norm_path.is_file():
            raise FileNotFoundError(f"{norm_path} not found: the global feature normaliser is needed")
        load_normalizer_stats(normalize, norm_path, device=device)
    counter = newest.path / COUNTER_FILE
    epoch = read_epoch_counter(counter) if counter.is_file() else None
    logger.info(
        "loaded ASR checkpoint %s (model averaged over %d checkpoint(s), epoch %s)",
        newest.path,
        len(chosen),
        epoch,
    )
    return LoadedCheckpoint(
        kind="save",
        source=newest.path.parent,
        recovered=newest.path,
        averaged=[c.path for c in chosen],
        epoch=epoch,
        meta=dict(newest.meta),
    )


def load_hf_folder(
    model: torch.nn.Module,
    normalize: torch.nn.Module | None,
    hf_folder: str | os.PathLike,
    device: str | torch.device | None = None,
) -> LoadedCheckpoint:
    """Load the Hugging Face 768-d release files ``asr.ckpt`` + ``normalizer.ckpt`` from a local folder.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the two files is missing.
    ValueError
        If parameter names or shapes do not match the model.
    """
    hf_folder = Path(hf_folder).expanduser()
    if not hf_folder.is_dir():
        raise FileNotFoundError(f"Hugging Face ASR folder not found: {hf_folder}")
    map_location = device if device is not None else "cpu"
    load_model_state(
        model,
        torch_load(hf_folder / HF_MODEL_FILE, map_location=map_location),
        str(hf_folder / HF_MODEL_FILE),
    )
    if normalize is not None:
        load_normalizer_stats(normalize, hf_folder / NORMALIZER_FILE, device=device)
    logger.info("loaded Hugging Face ASR files from %s", hf_folder)
    return LoadedCheckpoint(kind="hf", source=hf_folder)


def load_pretrained_into(
    hparams: Mapping[str, Any],
    save_folder: str | os.PathLike | None = None,
    hf_folder: str | os.PathLike | None = None,
    average: bool = False,
    device: str | torch.device | None = None,
) -> LoadedCheckpoint:
    """Fill ``hparams["model"]`` and ``hparams["normalize"]`` from a pretrained checkpoint.

    Parameters
    ----------
    hparams : mapping
        Loaded ``transformer_cpc1.yaml`` (needs the keys ``model`` and ``normalize``).
    save_folder : path-like, optional
        SpeechBrain 0.5.x/1.x ``save/`` folder (or its parent output folder).
    hf_folder : path-like, optional
        Folder with the HF release files ``asr.ckpt`` and ``normalizer.ckpt``.
    average : bool
        For ``save_folder``: average the model over all checkpoints instead of taking the newest.
    device : str or torch.device, optional
        Where the loaded tensors go.

    Returns
    -------
    LoadedCheckpoint
        What was read (``epoch`` from ``counter.ckpt``, if any).

    Raises
    ------
    ValueError
        If neither or both folders are given, or the checkpoint does not fit the model.
    FileNotFoundError
        If a folder or file is missing.
    """
    if (save_folder is None) == (hf_folder is None):
        raise ValueError("give exactly one of save_folder (SpeechBrain save/) or hf_folder (asr.ckpt)")
    if save_folder is not None:
        return load_save_folder(
            hparams["model"], hparams["normalize"], save_folder, average=average, device=device
        )
    return load_hf_folder(hparams["model"], hparams["normalize"], hf_folder, device=device)


def load_starting_point(
    hparams: Mapping[str, Any],
    save_folder: str | os.PathLike | None = None,
    hf_folder: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> LoadedCheckpoint:
    """:func:`load_pretrained_into`, plus the checkpoint's epoch counter and Noam step count.

    Fine-tuning goes on from the pretrained epoch (110 for the LibriSpeech model, as in the original)
    and Noam step count: they are copied into ``hparams["epoch_counter"]`` and
    ``hparams["noam_annealing"]`` when the checkpoint has them (a ``save/`` folder; not the HF files).

    Returns
    -------
    LoadedCheckpoint
        What was read.
    """
    loaded = load_pretrained_into(hparams, save_folder=save_folder, hf_folder=hf_folder, device=device)
    if loaded.epoch is not None:
        hparams["epoch_counter"].current = loaded.epoch
    noam_file = loaded.recovered / NOAM_FILE if loaded.recovered is not None else None
    if noam_file is not None and noam_file.is_file():
        hparams["noam_annealing"].n_steps = int(torch_load(noam_file)["n_steps"])
    return loaded
