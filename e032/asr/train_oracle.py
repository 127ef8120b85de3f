"""Check the E032 training loop against a training-step oracle.

The oracle was made with the original code on SpeechBrain 0.5.9.

An oracle folder (its README documents every field) holds one fixed batch (``batch.npz``), the run
settings (``meta.json`` and ``<run>/scalars.json``: seeds, epochs, stage switch, yaml overrides) and, per
run, what the original ``train_asr.py`` produced through SpeechBrain 0.5.9's ``Brain.fit()``: losses of
every micro-batch, per optimiser update the learning rate used, the gradient norm before clipping, the
accumulated gradients (``grads_before_clip.npz``) and the full state dict after the update
(``states.npz``), and the normalised features (``tensors.npz``).

:func:`run_oracle` trains our :class:`~e032.asr.training.ASRBrain`, built from ``transformer_cpc1.yaml``
exactly as ``train_asr.py`` builds it, on that batch from the oracle's starting checkpoint, records the
same quantities and returns their largest deviations with the oracle's suggested tolerances
(:data:`TOLERANCES`, README §6 of the oracle). Nothing of the training is re-implemented here: the
recording subclass only copies values around ``optimizers_step`` and the yaml's cost functions.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from e032.asr.checkpoint import load_starting_point, rename_legacy_keys
from e032.asr.training import ASRBrain

# Keys of the original recipe's yaml overrides (meta.json "yaml_overrides") -> ours; None = not built here.
ORIGINAL_YAML_KEYS: dict[str, str | None] = {
    "d_model": "d_model",
    "nhead": "nhead",
    "num_encoder_layers": "num_encoder_layers",
    "num_decoder_layers": "num_decoder_layers",
    "d_ffn": "d_ffn",
    "output_neurons": "output_neurons",
    "gradient_accumulation": "gradient_accumulation",
    "CNN.out_channels": "cnn_channels",
    "Transformer.input_size": "transformer_input_size",
    "vocab_size": None,
    "lm_model": None,  # the language model: built by the original, unused in training
}

# README §6 of the oracle: its suggested tolerances (what 2 threads instead of 1 changed stayed below them)
TOLERANCES: dict[str, float] = {
    "losses": 1e-4,  # absolute, loss / loss_ctc / loss_seq of every micro-batch (values 60-75)
    "schedule": 0.0,  # mismatches of update count, optimiser class, Noam step count (exact)
    "normaliser count": 0.0,  # micro-batches whose normaliser count differs (0.5.9 counts every call)
    "learning rates": 1e-12,  # relative, lr used by every update and lr Noam set after it
    "grad norms": 1e-5,  # relative, total gradient norm before clipping
    "gradients": 1e-4,  # ||g - g_ref|| / ||g_ref|| over all parameters, per update
    "parameters": 1e-6,  # absolute, state after every stored update (null-gradient entries apart)
    "null-gradient entries": 3e-4,  # absolute; rounding noise that Adam amplifies (README: not reproducible)
    "BN running_mean": 1e-6,  # absolute, after updates 1-2
    "BN running_mean, late": 2e-4,  # after update >= 3 it follows the noisy conv biases (README §6)
    "BN running_var": 1e-6,
    "BN num_batches_tracked": 0.0,
    "features": 1e-5,  # absolute, normalised features and normaliser statistics
}
BN_LATE_FROM_UPDATE = 3  # first update whose state has a BN running_mean of the "late" row
ROWS_RELATIVE = ("learning rates", "grad norms", "gradients")

# Entries whose gradient is mathematically 0 (README §6): a conv bias in front of BatchNorm is cancelled by
# the batch mean; attention is invariant to the key bias, the middle third of in_proj_bias.
CONV_BIAS_BEFORE_NORM = re.compile(r"^0\.convblock_\d+\.convs\.conv_\d+\.conv\.bias$")
IN_PROJ_BIAS = re.compile(r"\.in_proj_bias$")


@dataclass
class Recording:
    """What our training produced, in the oracle's terms (0-based lists, one entry per micro-batch/update)."""

    micro_batches: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    grads: list[dict[str, torch.Tensor]] = field(default_factory=list)
    states: list[dict[str, torch.Tensor]] = field(default_factory=list)
    features: list[dict[str, torch.Tensor]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ oracle files
def read_json(path: Path) -> dict:
    """A JSON file of the oracle folder."""
    return json.loads(Path(path).read_text())


def run_names(oracle: Path) -> list[str]:
    """The oracle's checkable runs: those of ``meta.json`` "bases" with a folder, SpecAugment off."""
    meta = read_json(oracle / "meta.json")
    names = [n for n in meta["bases"] if (oracle / n / "scalars.json").is_file()]
    return [n for n in names if not read_json(oracle / n / "scalars.json")["meta"].get("specaug", False)]


def npz_or_empty(path: Path) -> Mapping[str, np.ndarray]:
    """The arrays of ``path`` (an empty mapping when a trimmed copy of the oracle lacks the file)."""
    return dict(np.load(path)) if path.is_file() else {}


def yaml_overrides(oracle: Path, run: str, output_folder: Path) -> dict[str, Any]:
    """Overrides of ``transformer_cpc1.yaml`` that reproduce the oracle run's settings.

    Raises
    ------
    ValueError
        If the oracle overrides a key of the original yaml that has no counterpart here.
    """
    meta = read_json(oracle / "meta.json")
    run_meta = read_json(oracle / run / "scalars.json")["meta"]
    overrides: dict[str, Any] = {}
    for key, value in flatten(meta["yaml_overrides"]).items():
        if key not in ORIGINAL_YAML_KEYS:
            raise ValueError(f"{oracle}/meta.json overrides {key!r}, which has no counterpart in our yaml")
        if ORIGINAL_YAML_KEYS[key] is not None:
            overrides[ORIGINAL_YAML_KEYS[key]] = value
    overrides.update(run_meta["hparams_used"])  # same key names as ours (ctc_weight, lr_sgd, epochs, ...)
    overrides.update(
        {
            "n_warmup_steps": run_meta["noam"]["n_warmup_steps"],
            "transformer_dropout": run_meta["transformer_dropout"],
            "number_of_epochs": run_meta["epochs"][-1],
            "fea_augment": None,
            "wav_augment": None,
            "data_folder": str(output_folder),
            "output_folder": str(output_folder),
            "torch_num_threads": 1,
        }
    )
    return overrides


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"CNN": {"out_channels": x}}`` -> ``{"CNN.out_channels": x}``.

    Only the original's module keys nest.
    """
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and f"{prefix}{key}" not in ORIGINAL_YAML_KEYS:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def make_batch(oracle: Path) -> PaddedBatch:
    """The oracle's batch as SpeechBrain's ``PaddedBatch`` builds it from the unpadded utterances.

    Raises
    ------
    ValueError
        If the relative lengths differ from the stored ones (the batch would not be the oracle's).
    """
    data = np.load(oracle / "batch.npz")
    wavs = data["wav_int16"].astype(np.float32) / np.float32(32768)
    examples = []
    for i, n_samples in enumerate(data["n_samples"]):
        example = {"id": f"utt{i}", "sig": torch.from_numpy(wavs[i, :n_samples].copy())}
        for key in ("tokens", "tokens_bos", "tokens_eos"):
            n_tokens = int(round(float(data[f"{key}_lens"][i]) * data[key].shape[1]))
            example[key] = torch.from_numpy(data[key][i, :n_tokens].astype(np.int64))
        examples.append(example)
    batch = PaddedBatch(examples)
    if not np.array_equal(batch.sig.lengths.numpy(), data["wav_lens"]):
        raise ValueError(f"{oracle}/batch.npz: relative lengths {data['wav_lens']} differ from PaddedBatch's")
    return batch


def _same_batch(batch):
    return batch


def repeated_loader(batch: PaddedBatch, n_per_epoch: int) -> torch.utils.data.DataLoader:
    """A loader yielding ``batch`` ``n_per_epoch`` times per epoch; its own generator keeps the global RNG
    for the dropout masks alone (the oracle's RNG contract)."""
    return torch.utils.data.DataLoader(
        [batch] * n_per_epoch, batch_size=None, collate_fn=_same_batch, generator=torch.Generator()
    )


# ------------------------------------------------------------------------------------------ recording
class RecordingBrain(ASRBrain):
    """:class:`ASRBrain` that copies gradients, learning rate and state around every optimiser update."""

    recording: Recording

    def optimizers_step(self):
        """Record the accumulated gradients and the lr, update (SpeechBrain), record the new state."""
        model = self.hparams.model
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        self.recording.grads.append(grads)
        self.recording.steps.append(
            {
                "optimizer": type(self.optimizer).__name__,
                "lr_used": self.optimizer.param_groups[0]["lr"],
                "grad_norm_before_clip": float(torch.nn.utils.get_total_norm(list(grads.values()))),
            }
        )
        super().optimizers_step()
        self.recording.states.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Noam (ASRBrain), then record the loss and the schedule."""
        super().on_fit_batch_end(batch, outputs, loss, should_step)
        self.recording.micro_batches[-1].update(
            loss=float(loss.detach()),
            optimizer_class_after=type(self.optimizer).__name__,
            normalizer_count_after=float(self.hparams.normalize.count),
        )
        if should_step:
            self.recording.steps[-1].update(
                noam_n_steps_after=self.hparams.noam_annealing.n_steps,
                lr_set_by_noam_after=self.optimizer.param_groups[0]["lr"],
            )


def record_costs(hparams: dict, recording: Recording) -> None:
    """Wrap the yaml's cost functions so that every micro-batch's CTC and sequence losses are kept."""

    def wrap(name: str, cost: Callable) -> Callable:
        def recorded(*args, **kwargs):
            value = cost(*args, **kwargs)
            if name == "loss_seq":  # the Brain computes the sequence loss first
                recording.micro_batches.append({})
            recording.micro_batches[-1][name] = float(value.detach())
            return value

        return recorded

    hparams["seq_cost"] = wrap("loss_seq", hparams["seq_cost"])
    hparams["ctc_cost"] = wrap("loss_ctc", hparams["ctc_cost"])


def record_features(hparams: dict, recording: Recording) -> None:
    """Keep the normaliser's output and statistics after every call."""

    def hook(module, args, output):
        del args
        recording.features.append(
            {
                "feats_norm": output.detach().clone(),
                "norm_glob_mean": module.glob_mean.detach().clone(),
                "norm_glob_std": module.glob_std.detach().clone(),
            }
        )

    hparams["normalize"].register_forward_hook(hook)


# ------------------------------------------------------------------------------------------ training
def build_brain(
    yaml_path: Path, overrides: Mapping[str, Any], checkpoint: Path, recording: Recording
) -> RecordingBrain:
    """Our Brain and modules from the yaml as ``train_asr.py`` builds them (CPU).

    Started from ``checkpoint``.
    """
    with open(yaml_path, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, dict(overrides))
    load_starting_point(hparams, save_folder=checkpoint, device="cpu")
    record_costs(hparams, recording)
    record_features(hparams, recording)
    brain = RecordingBrain(
        modules=hparams["modules"],
        opt_class=hparams["Adam"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
    )
    brain.recording = recording
    return brain


def check_starting_point(brain: ASRBrain, run_meta: Mapping[str, Any]) -> None:
    """The checkpoint must be the oracle's (Noam steps and normaliser count as recorded).

    Raises
    ------
    ValueError
        Naming the value that differs.
    """
    found = {
        "init_noam_n_steps": brain.hparams.noam_annealing.n_steps,
        "init_normalizer_count": brain.hparams.normalize.count,
    }
    for key, value in found.items():
        if key in run_meta and int(value) != int(run_meta[key]):
            raise ValueError(
                f"the checkpoint gives {key}={value}, the oracle run started from {run_meta[key]}"
            )


def train_run(
    oracle: Path,
    run: str,
    checkpoint: Path,
    yaml_path: Path,
    tmp: Path,
    switches: Mapping[str, Any] | None = None,
) -> Recording:
    """Train our Brain through ``fit()`` as the oracle run did and return what it recorded.

    Parameters
    ----------
    oracle : Path
        The oracle folder.
    run : str
        Run name (a folder of ``oracle``), e.g. ``"main"``.
    checkpoint : Path
        The starting ``save/`` folder (the oracle's; as in the oracle, its epoch counter is not used).
    yaml_path : Path
        ``transformer_cpc1.yaml``.
    tmp : Path
        An empty folder for the (unused) output and checkpoint folder.
    switches : mapping, optional
        Further yaml overrides, e.g. ``{"ctc_lengths": "round"}``, applied last.
    """
    scalars = read_json(oracle / run / "scalars.json")
    run_meta = scalars["meta"]
    recording = Recording()
    overrides = {**yaml_overrides(oracle, run, tmp), **(switches or {})}
    brain = build_brain(yaml_path, overrides, checkpoint, recording)
    brain.hparams.epoch_counter.current = run_meta["epochs"][0] - 1
    check_starting_point(brain, run_meta)
    n_per_epoch, rest = divmod(len(scalars["micro_batches"]), len(run_meta["epochs"]))
    if rest:
        raise ValueError(f"{oracle}/{run}: micro-batches do not divide evenly into the epochs")
    torch.set_num_threads(run_meta.get("torch_num_threads", 1))
    torch.manual_seed(run_meta["train_seed"])
    brain.fit(
        brain.hparams.epoch_counter,
        repeated_loader(make_batch(oracle), n_per_epoch),
        valid_set=None,
        progressbar=False,
    )
    return recording


# ------------------------------------------------------------------------------------------ comparison
def max_abs(ours, ref) -> float:
    """Largest absolute difference (inf when the shapes differ)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return float("inf")
    return float(np.abs(ours - ref).max()) if ours.size else 0.0


def max_rel(ours, ref) -> float:
    """Largest relative difference; exact zeros in ``ref`` must be zeros in ``ours``."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return float("inf")
    diff = np.abs(ours - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(ref))
    return float(rel.max()) if rel.size else 0.0


def compare_losses(rec: Recording, scalars: Mapping[str, Any]) -> float:
    """Largest absolute loss difference over the micro-batches (loss, loss_ctc, loss_seq)."""
    ref = scalars["micro_batches"]
    if len(rec.micro_batches) != len(ref):
        return float("inf")
    return max(
        max_abs([m[k] for m in rec.micro_batches], [m[k] for m in ref])
        for k in ("loss", "loss_ctc", "loss_seq")
    )


def compare_schedule(rec: Recording, scalars: Mapping[str, Any]) -> float:
    """Number of mismatches of the update count, optimiser classes and Noam step counts."""
    ref = scalars["optimizer_steps"]
    if len(rec.steps) != len(ref):
        return float(abs(len(rec.steps) - len(ref)))
    keys = ("optimizer", "noam_n_steps_after")
    mismatches = sum(ours[k] != theirs[k] for ours, theirs in zip(rec.steps, ref) for k in keys)
    mismatches += sum(
        ours["optimizer_class_after"] != theirs["optimizer_class_after"]
        for ours, theirs in zip(rec.micro_batches, scalars["micro_batches"])
    )
    return float(mismatches)


def compare_normaliser_count(rec: Recording, scalars: Mapping[str, Any]) -> float:
    """Number of micro-batches after which the normaliser's ``count`` differs."""
    ref = scalars["micro_batches"]
    if len(rec.micro_batches) != len(ref):
        return float("inf")
    return float(
        sum(
            o["normalizer_count_after"] != r["normalizer_count_after"] for o, r in zip(rec.micro_batches, ref)
        )
    )


def compare_learning_rates(rec: Recording, scalars: Mapping[str, Any]) -> float:
    """Largest relative difference of the lr used by each update and of the lr Noam set after it."""
    ref = scalars["optimizer_steps"]
    if len(rec.steps) != len(ref):
        return float("inf")
    return max(
        max_rel([s[k] for s in rec.steps], [s[k] for s in ref]) for k in ("lr_used", "lr_set_by_noam_after")
    )


def compare_grad_norms(rec: Recording, scalars: Mapping[str, Any]) -> float:
    """Largest relative difference of the gradient norm before clipping."""
    ref = [s["grad_norm_before_clip"] for s in scalars["optimizer_steps"]]
    ours = [s["grad_norm_before_clip"] for s in rec.steps]
    return max_rel(ours, ref) if len(ours) == len(ref) else float("inf")


def by_update(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[int, dict[str, np.ndarray]]:
    """``{"step1/name": a}`` -> ``{1: {"name": a}}`` with 0.5.x parameter names renamed to ours."""
    grouped: dict[int, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        head, name = key.split("/", 1)
        grouped.setdefault(int(head.removeprefix(prefix)), {})[name] = value
    return {k: rename_legacy_keys(v) for k, v in sorted(grouped.items())}


def compare_gradients(rec: Recording, grads: Mapping[str, np.ndarray]) -> float:
    """Largest ``||g - g_ref|| / ||g_ref||`` (all parameters together) over the stored updates."""
    worst = 0.0
    for step, ref in by_update(grads, "step").items():
        ours = rec.grads[step - 1] if step <= len(rec.grads) else {}
        if set(ours) != set(ref):
            return float("inf")
        diff = sum(float(np.sum((ours[k].double().numpy() - ref[k]) ** 2)) for k in ref)
        norm = sum(float(np.sum(ref[k].astype(np.float64) ** 2)) for k in ref)
        worst = max(worst, (diff / norm) ** 0.5)
    return worst


def null_gradient_mask(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """True for the entries whose gradient is mathematically zero (see :data:`CONV_BIAS_BEFORE_NORM`)."""
    mask = np.zeros(shape, dtype=bool)
    if CONV_BIAS_BEFORE_NORM.search(name):
        mask[...] = True
    elif IN_PROJ_BIAS.search(name):
        third = shape[0] // 3
        mask[third : 2 * third] = True
    return mask


def state_row(name: str, step: int) -> str:
    """Table row of a state entry after ``step`` updates (its null-gradient part goes to its own row)."""
    if name.endswith("running_mean"):
        return "BN running_mean, late" if step >= BN_LATE_FROM_UPDATE else "BN running_mean"
    if name.endswith(("running_var", "num_batches_tracked")):
        return "BN " + name.rsplit(".", 1)[1]
    return "parameters"


def compare_states(rec: Recording, states: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Largest absolute deviation of the state after every stored update, per row of :data:`TOLERANCES`."""
    worst: dict[str, float] = {}
    for step, ref in by_update(states, "after_step").items():
        ours = rec.states[step - 1] if step <= len(rec.states) else {}
        for name, ref_value in ref.items():
            if name not in ours or tuple(ours[name].shape) != ref_value.shape:
                worst[state_row(name, step)] = float("inf")
                continue
            diff = np.abs(ours[name].double().numpy() - ref_value)
            null = null_gradient_mask(name, ref_value.shape)
            for row, part in ((state_row(name, step), diff[~null]), ("null-gradient entries", diff[null])):
                if part.size:
                    worst[row] = max(worst.get(row, 0.0), float(part.max()))
    return worst


def compare_features(rec: Recording, tensors: Mapping[str, np.ndarray]) -> float | None:
    """Largest absolute difference of the normalised features and normaliser statistics.

    None: none stored.
    """
    pattern = re.compile(r"^mb(\d+)\.(feats_norm|norm_glob_mean|norm_glob_std)$")
    devs = []
    for key, ref in tensors.items():
        match = pattern.match(key)
        if match:
            k = int(match.group(1))
            ours = rec.features[k - 1][match.group(2)].numpy() if k <= len(rec.features) else np.inf
            devs.append(max_abs(ours, ref))
    return max(devs) if devs else None


@dataclass
class Deviation:
    """One table row of one run: the largest deviation and its tolerance."""

    quantity: str
    deviation: float
    tolerance: float
    within: bool


def compare_run(rec: Recording, oracle: Path, run: str) -> list[Deviation]:
    """Every deviation of ``rec`` from the oracle run ``run``, one :class:`Deviation` per quantity."""
    scalars = read_json(oracle / run / "scalars.json")
    rows = {
        "losses": compare_losses(rec, scalars),
        "schedule": compare_schedule(rec, scalars),
        "normaliser count": compare_normaliser_count(rec, scalars),
        "learning rates": compare_learning_rates(rec, scalars),
        "grad norms": compare_grad_norms(rec, scalars),
    }
    grads = npz_or_empty(oracle / run / "grads_before_clip.npz")
    if grads:
        rows["gradients"] = compare_gradients(rec, grads)
    rows.update(compare_states(rec, npz_or_empty(oracle / run / "states.npz")))
    features = compare_features(rec, npz_or_empty(oracle / run / "tensors.npz"))
    if features is not None:
        rows["features"] = features
    return [Deviation(q, d, TOLERANCES[q], d <= TOLERANCES[q]) for q, d in rows.items()]


def check_oracle(
    oracle: Path,
    checkpoint: Path,
    yaml_path: Path,
    runs: list[str] | None = None,
    switches: Mapping[str, Any] | None = None,
) -> dict[str, list[Deviation]]:
    """Train every run of the oracle folder (or ``runs``) and compare; returns ``{run: deviations}``."""
    results = {}
    for run in runs or run_names(oracle):
        with tempfile.TemporaryDirectory(prefix=f"asr_train_oracle_{run}_") as tmp:
            recording = train_run(oracle, run, checkpoint, yaml_path, Path(tmp), switches)
        results[run] = compare_run(recording, oracle, run)
    return results


def format_table(results: Mapping[str, list[Deviation]]) -> str:
    """A markdown table: one row per quantity, its tolerance, the largest deviation of every run.

    A deviation beyond its tolerance is marked ``FAIL``; ``-`` means the oracle stores no such value.
    """
    runs = list(results)
    quantities = [q for q in TOLERANCES if any(d.quantity == q for devs in results.values() for d in devs)]
    lines = ["| quantity | tolerance | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    for quantity in quantities:
        kind = "rel." if quantity in ROWS_RELATIVE else ("exact" if TOLERANCES[quantity] == 0 else "abs.")
        cells = []
        for run in runs:
            found = [d for d in results[run] if d.quantity == quantity]
            cells.append(
                "-" if not found else f"{found[0].deviation:.2g}" + ("" if found[0].within else " FAIL")
            )
        lines.append(f"| {quantity} | {TOLERANCES[quantity]:.0e} {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def all_within(results: Mapping[str, list[Deviation]]) -> bool:
    """True when every deviation of every run is within its tolerance."""
    return all(d.within for devs in results.values() for d in devs)
