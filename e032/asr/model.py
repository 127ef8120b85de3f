"""The E032 ASR as a small API: checkpoint -> modules of ``transformer_cpc1.yaml`` -> representations.

``load_asr(checkpoint_dir, yaml_path="transformer_cpc1.yaml", overrides=None, device=None)`` returns an
:class:`ASRModel` whose methods give, for 16 kHz waveforms,

* :meth:`ASRModel.encode` / :meth:`ASRModel.encode_batch`: the encoder representation ``[T, d_model]``
  (output of the last encoder layer after the final LayerNorm, 40 ms frames);
* :meth:`ASRModel.represent` / :meth:`ASRModel.represent_batch`: encoder and decoder representations,
  the best hypothesis and its score (:class:`Representation`).

The front-end is exactly the recipe's (``infer.ASR.generate_feats``, ``docs/original_recipe.md``
§4.3): Fbank -> global ``InputNormalization`` (frozen: eval mode, epoch counter past
``update_until_epoch``) -> CNN -> ``TransformerASR.encode``; the decoder representation comes from the
yaml's ``test_search`` (:class:`e032.asr.beam_search.TransformerBeamSearch`).

Batching: the original ran one utterance at a time. Padding changes the encoder's numbers (the
CNN's "same" padding sees the padded frames, and the Fbank's top-80-dB clamp is taken over the
padded tensor), so :meth:`ASRModel.encode_batch` only stacks utterances of **identical length**
(e.g. the two ears of a signal), where the result equals the one-at-a-time result (checked in
``tests/test_asr_oracle.py``). The beam search batches utterances of any lengths
(:meth:`ASRModel.search_many`): padded, with each utterance's own step limits, a source mask and a
length-aware CTC prefix scorer, so that each result is the one-at-a-time result
(``tests/test_batched_search.py``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from e032.asr.beam_search import SearchResult
from e032.asr.checkpoint import HF_MODEL_FILE, LoadedCheckpoint, load_hf_folder, load_save_folder
from e032.manifests import ASR_SAMPLE_RATE, MIN_ASR_INPUT_S

logger = logging.getLogger(__name__)

DecoderRepresentation = Literal["last_step_slot0", "best_hyp"]
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "transformer_cpc1.yaml"
SAMPLE_RATE = ASR_SAMPLE_RATE  # Hz


@dataclass
class Representation:
    """Hidden representations of one utterance.

    Attributes
    ----------
    enc : torch.Tensor
        ``[T_enc, d_model]`` encoder output (CPU, float32).
    dec : torch.Tensor
        ``[L, d_model]`` decoder representation (CPU, float32): the decoder output of beam slot 0 at
        the last search step (faithful), or the teacher-forced decoder states of the best hypothesis.
    hyp : list of int
        Best hypothesis (token ids, no EOS).
    score : float
        Its length-normalised score.
    search : SearchResult
        The full beam-search result.
    """

    enc: torch.Tensor
    dec: torch.Tensor
    hyp: list[int]
    score: float
    search: SearchResult


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU (never a hard-coded ``cuda:0``)."""
    if device is not None and str(device) != "":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_hparams(
    yaml_path: str | os.PathLike = DEFAULT_YAML,
    overrides: Mapping[str, Any] | None = None,
    output_folder: str | os.PathLike | None = None,
) -> dict:
    """Load ``transformer_cpc1.yaml`` with overrides, without side effects on disk.

    The mandatory paths (``data_folder``, ``output_folder``) default to ``output_folder`` (or a dummy
    value); the ``checkpointer`` and ``train_logger`` objects, which create folders/files, are not
    built (set to None) unless the overrides name them.

    Raises
    ------
    FileNotFoundError
        If the yaml does not exist.
    """
    yaml_path = Path(yaml_path)
    if not yaml_path.is_file():
        raise FileNotFoundError(f"ASR hyper-parameter file not found: {yaml_path}")
    folder = str(output_folder) if output_folder is not None else "unused_output_folder"
    top_keys = set(re.findall(r"^([A-Za-z_][\w]*)\s*:", yaml_path.read_text(), flags=re.MULTILINE))
    merged: dict[str, Any] = {"data_folder": folder, "output_folder": folder}
    merged.update({key: None for key in ("checkpointer", "train_logger") if key in top_keys})
    unknown = sorted(set(overrides or {}) - top_keys)
    if unknown:  # e.g. training-only keys of a shared overrides file
        logger.warning("ignoring overrides not in %s: %s", yaml_path.name, unknown)
    merged.update({k: v for k, v in dict(overrides or {}).items() if k in top_keys})
    with open(yaml_path) as stream:
        return load_hyperpyyaml(stream, merged)


class ASRModel:
    """The loaded ASR (modules in eval mode on ``device``) with representation extraction.

    Build it with :func:`load_asr`.
    """

    def __init__(
        self,
        hparams: dict,
        device: torch.device,
        epoch: int | None = None,
        decoder_representation: DecoderRepresentation | None = None,
        checkpoint: LoadedCheckpoint | None = None,
    ):
        self.hparams = hparams
        self.device = device
        self.checkpoint = checkpoint
        self.compute_features = hparams["compute_features"].to(device)
        self.normalize = hparams["normalize"].to(device)  # InputNormalization.to moves its statistics
        self.cnn = hparams["CNN"].to(device)
        self.transformer = hparams["Transformer"].to(device)
        hparams["seq_lin"].to(device)
        hparams["ctc_lin"].to(device)
        self.searcher = hparams["test_search"].to(device)
        for module in (self.compute_features, self.normalize, hparams["model"], self.searcher):
            module.eval()
        # the normaliser only updates while epoch < update_until_epoch (and, in SB 1.x, in training mode)
        self.epoch = epoch if epoch is not None else int(hparams.get("number_of_epochs", 10**6))
        mode = decoder_representation or hparams.get("decoder_representation", "last_step_slot0")
        if mode not in ("last_step_slot0", "best_hyp"):
            raise ValueError(f"decoder_representation must be 'last_step_slot0' or 'best_hyp', got {mode!r}")
        self.decoder_representation: DecoderRepresentation = mode
        self.bos_index = int(hparams["bos_index"])

    # ------------------------------------------------------------------------------ front-end + encoder
    def _as_batch(self, wavs: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        arrays = [
            torch.as_tensor(np.asarray(w, dtype=np.float32)) if not torch.is_tensor(w) else w.float()
            for w in wavs
        ]
        for i, w in enumerate(arrays):
            if w.ndim != 1 or w.numel() == 0:
                raise ValueError(
                    f"waveform {i}: expected a non-empty mono 1-D signal, got shape {tuple(w.shape)}"
                )
            if w.numel() < MIN_ASR_INPUT_S * SAMPLE_RATE:
                raise ValueError(
                    f"waveform {i}: {w.numel()} samples ({w.numel() / SAMPLE_RATE:.3f} s); the ASR "
                    f"needs at least {MIN_ASR_INPUT_S} s at {SAMPLE_RATE} Hz"
                )
        return torch.stack(arrays).to(self.device)

    @torch.no_grad()
    def stages(self, wav: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """Every front-end stage of one utterance (batch dim dropped, CPU).

        Keys: fbank, feats_norm, cnn_out, enc_out.
        """
        wavs = self._as_batch([wav])
        lens = torch.ones(1, device=self.device)
        fbank = self.compute_features(wavs)
        feats = self.normalize(fbank, lens, epoch=self.epoch)
        cnn_out = self.cnn(feats)
        enc_out = self.transformer.encode(cnn_out, lens)
        return {
            k: v[0].cpu()
            for k, v in {"fbank": fbank, "feats_norm": feats, "cnn_out": cnn_out, "enc_out": enc_out}.items()
        }

    @torch.no_grad()
    def _encode_equal_length(self, wavs: torch.Tensor) -> torch.Tensor:
        """Encoder output ``[B, T, d]`` of a batch of equal-length waveforms ``[B, N]``."""
        lens = torch.ones(wavs.shape[0], device=self.device)
        feats = self.normalize(self.compute_features(wavs), lens, epoch=self.epoch)
        return self.transformer.encode(self.cnn(feats), lens)

    def encode_batch(
        self, wavs: Sequence[np.ndarray | torch.Tensor], max_batch: int = 8
    ) -> list[torch.Tensor]:
        """Encoder representations ``[T_i, d_model]`` (on ``self.device``) of several utterances.

        Utterances of identical length are encoded together (at most ``max_batch`` at a time); others
        one by one, so the numbers equal the one-at-a-time ones.
        """
        wavs = list(wavs)
        out: list[torch.Tensor | None] = [None] * len(wavs)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(wavs):
            groups.setdefault(len(w), []).append(i)
        for indices in groups.values():
            for s in range(0, len(indices), max_batch):
                chunk = indices[s : s + max_batch]
                enc = self._encode_equal_length(self._as_batch([wavs[i] for i in chunk]))
                for j, i in enumerate(chunk):
                    out[i] = enc[j]
        return out  # type: ignore[return-value]

    def encode(self, wav: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Encoder representation ``[T_enc, d_model]`` (CPU) of one 16 kHz waveform."""
        return self.encode_batch([wav])[0].cpu()

    # ------------------------------------------------------------------------------ decoder
    @torch.no_grad()
    def search(self, enc: torch.Tensor) -> SearchResult:
        """Beam search on one utterance's encoder output ``[T, d]``."""
        return self.searcher.search(enc.unsqueeze(0).to(self.device))

    @torch.no_grad()
    def teacher_forced_states(self, enc: torch.Tensor, hyp: Sequence[int]) -> torch.Tensor:
        """Decoder output ``[len(hyp) + 1, d]`` for the input ``[bos] + hyp`` (the ``best_hyp`` variant)."""
        tokens = torch.tensor([[self.bos_index, *hyp]], dtype=torch.long, device=self.device)
        dec, _ = self.transformer.decode(tokens, enc.unsqueeze(0).to(self.device))
        return dec[0]

    @torch.no_grad()
    def search_many(self, encs: Sequence[torch.Tensor], batch_size: int) -> list[SearchResult]:
        """Beam searches of several utterances, ``batch_size`` at a time, each as if alone.

        Parameters
        ----------
        encs : sequence of torch.Tensor
            Encoder outputs ``[T_i, d_model]``, any lengths.
        batch_size : int
            Utterances per search (each brings ``beam_size`` beams). They are sorted by length
            (longest first, ties in input order) so that a batch holds little padding.

        Returns
        -------
        list of SearchResult
            Per utterance, in input order, the batch-size-1 result of the exact batched search
            (:meth:`TransformerBeamSearch.search` with ``enc_lens``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(range(len(encs)), key=lambda i: -encs[i].shape[0])
        results: list[SearchResult | None] = [None] * len(encs)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            lens = torch.tensor([encs[i].shape[0] for i in chunk], device=self.device)
            padded = [encs[i].to(self.device) for i in chunk]
            batch = torch.nn.utils.rnn.pad_sequence(padded, batch_first=True)
            result = self.searcher.search(batch, enc_lens=lens)
            for j, i in enumerate(chunk):
                results[i] = result.select(j)
        return results  # type: ignore[return-value]

    def represent_batch(
        self, wavs: Sequence[np.ndarray | torch.Tensor], max_batch: int = 8
    ) -> list[Representation]:
        """:class:`Representation` of several utterances.

        Utterances of identical length share an encoder batch; the searches run ``max_batch``
        utterances at a time, padded (:meth:`search_many`). Each utterance's result is the one a
        search of it alone gives (its decoder representation taken at its own search's last step).
        """
        encs = self.encode_batch(wavs, max_batch=max_batch)
        return self.represent_encoded(encs, batch_size=max_batch)

    def represent_encoded(self, encs: Sequence[torch.Tensor], batch_size: int) -> list[Representation]:
        """:class:`Representation` of several encoded utterances (``[T_i, d_model]`` each).

        The searches run ``batch_size`` utterances at a time (:meth:`search_many`).
        """
        return [
            self._representation(enc, result)
            for enc, result in zip(encs, self.search_many(encs, batch_size), strict=True)
        ]

    def _representation(self, enc: torch.Tensor, result: SearchResult) -> Representation:
        if self.decoder_representation == "last_step_slot0":
            dec = result.dec_out[0]
        else:
            dec = self.teacher_forced_states(enc, result.hyps[0])
        return Representation(
            enc=enc.cpu(),
            dec=dec.cpu(),
            hyp=list(result.hyps[0]),
            score=float(result.topk_scores[0, 0]),
            search=result,
        )

    def represent(self, wav: np.ndarray | torch.Tensor) -> Representation:
        """Encoder rep, decoder rep, best hypothesis and its score for one 16 kHz waveform."""
        return self.represent_batch([wav])[0]


def load_asr(
    checkpoint_dir: str | os.PathLike,
    yaml_path: str | os.PathLike = DEFAULT_YAML,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    average: bool = True,
    decoder_representation: DecoderRepresentation | None = None,
) -> ASRModel:
    """Build the modules from the yaml and load a checkpoint into them.

    Parameters
    ----------
    checkpoint_dir : path-like
        A SpeechBrain ``save/`` folder (0.5.x or 1.x; or the output folder containing ``save/``), or a
        folder with the HF release files ``asr.ckpt`` + ``normalizer.ckpt``.
    yaml_path : path-like
        ``transformer_cpc1.yaml`` (default: the one at the repository root).
    overrides : mapping, optional
        yaml overrides, e.g. the model sizes of a small model.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    average : bool
        Average the model over all checkpoints of ``save/`` (the original ``init_evaluation``).
    decoder_representation : {"last_step_slot0", "best_hyp"}, optional
        Overrides the yaml's ``decoder_representation``.

    Raises
    ------
    FileNotFoundError
        If the folder or checkpoint files are missing.
    ValueError
        If the checkpoint does not fit the model built from the yaml.
    """
    checkpoint_dir = Path(checkpoint_dir).expanduser()
    if not checkpoint_dir.is_dir():
        raise FileNotFoundError(f"ASR checkpoint folder not found: {checkpoint_dir}")
    device = choose_device(device)
    hparams = load_hparams(yaml_path, overrides, output_folder=checkpoint_dir)
    if (checkpoint_dir / HF_MODEL_FILE).is_file():
        loaded = load_hf_folder(hparams["model"], hparams["normalize"], checkpoint_dir)
    else:
        loaded = load_save_folder(hparams["model"], hparams["normalize"], checkpoint_dir, average=average)
    return ASRModel(
        hparams, device, epoch=loaded.epoch, decoder_representation=decoder_representation, checkpoint=loaded
    )
