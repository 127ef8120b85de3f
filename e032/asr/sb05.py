"""SpeechBrain 0.5.9 training arithmetic that SpeechBrain 1.1.2 changed, each with a switch back to 1.1.2.

The original E032 fine-tuning ran on SpeechBrain 0.5.9. Run on a fixed batch through its own
``Brain.fit()`` (the training-step oracle, docs/train_asr.md "Faithful training arithmetic"), it
differs from SpeechBrain 1.1.2 in four places, all reproduced here by default:

* (a) :class:`FloorFbank`: the Fbank's 80 dB dynamic-range floor is taken over the whole padded
  **batch** (``max(x_db, x_db.max() - 80)``), not per utterance;
* (b) :class:`TransformerASR`: the decoder's cross-attention gets **no** ``memory_key_padding_mask``;
* (c) :func:`ctc_loss`: CTC input and target lengths are **truncated** (``.int()``), not rounded;
* (d) :class:`InputNormalization`: the global statistics are updated with 0.5.9's rule (per-utterance
  mean and unbiased standard deviation, batch average, running weight ``1 / (count + 1)`` where
  ``count`` is the number of calls), in every mode while ``epoch < update_until_epoch``.

Each class or function takes a switch whose other value is SpeechBrain 1.1.2's own code, bit for bit.
"""

from __future__ import annotations

from typing import Literal

import torch
from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR as SBTransformerASR
from speechbrain.nnet.losses import ctc_loss as sb_ctc_loss
from speechbrain.processing.features import InputNormalization as SBInputNormalization

FbankFloor = Literal["batch", "utterance"]
CTCLengthRule = Literal["truncate", "round"]
NormalizerUpdate = Literal["sb05", "sb1"]

STD_FLOOR = 1e-10  # 0.5.9 InputNormalization ``eps``: lower bound of a per-utterance standard deviation


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class FloorFbank(torch.nn.Module):
    """A SpeechBrain ``Fbank`` whose dB floor covers the whole batch (0.5.9) or each utterance (1.1.2).

    SpeechBrain 1.1.2 clips each utterance at its own maximum minus ``top_db`` (80 dB); 0.5.9 used one
    maximum for the padded batch, so a quiet utterance in a loud batch keeps up to ``top_db`` dB more
    range (up to 42 dB feature differences on the oracle batch). Because every per-utterance floor lies
    below the batch floor, clipping the 1.1.2 output once more at ``batch max - top_db`` gives 0.5.9's
    values exactly.

    Parameters
    ----------
    fbank : speechbrain.lobes.features.Fbank
        The feature extractor (no deltas or context: its output must be the log filterbank itself).
    floor : {"batch", "utterance"}
        ``"batch"``: 0.5.9; ``"utterance"``: 1.1.2 (``fbank`` unchanged).
    """

    def __init__(self, fbank: torch.nn.Module, floor: FbankFloor = "batch") -> None:
        super().__init__()
        _check_choice("floor", floor, ("batch", "utterance"))
        if getattr(fbank, "deltas", False) or getattr(fbank, "context", False):
            raise ValueError("FloorFbank needs an Fbank without deltas or context")
        self.fbank = fbank
        self.floor = floor
        self.top_db = float(fbank.compute_fbanks.top_db)  # dB below the maximum that is kept

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        """Log mel filterbank in dB, [shape=(batch, frames, n_mels)].

        Of waveforms [shape=(batch, samples)].
        """
        feats = self.fbank(wavs)
        if self.floor == "utterance":
            return feats
        return torch.maximum(feats, feats.amax() - self.top_db)


class TransformerASR(SBTransformerASR):
    """SpeechBrain's ``TransformerASR`` whose training ``forward`` can leave the decoder's memory unmasked.

    SpeechBrain 0.5.9's ``forward`` passed no ``memory_key_padding_mask`` to the decoder, so its
    cross-attention also attended to the encoder frames of the padding; 1.1.2 passes the source padding
    mask. Only ``forward`` (teacher-forced training and validation) is affected; ``encode`` and ``decode``
    (the beam search) are SpeechBrain's.

    Parameters
    ----------
    *args, **kwargs
        Those of :class:`speechbrain.lobes.models.transformer.TransformerASR.TransformerASR`.
    decoder_memory_mask : bool
        False: 0.5.9 (no memory mask); True: 1.1.2.
    """

    def __init__(self, *args, decoder_memory_mask: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decoder_memory_mask = bool(decoder_memory_mask)

    def forward(self, src, tgt, wav_len=None, pad_idx=0):
        """Encoder and teacher-forced decoder outputs, as SpeechBrain's ``forward``."""
        if self.decoder_memory_mask:
            return super().forward(src, tgt, wav_len, pad_idx=pad_idx)
        handle = self.decoder.register_forward_pre_hook(_drop_memory_mask, with_kwargs=True)
        try:
            return super().forward(src, tgt, wav_len, pad_idx=pad_idx)
        finally:
            handle.remove()


def _drop_memory_mask(module, args, kwargs):
    """Forward pre-hook: call the decoder without ``memory_key_padding_mask``."""
    del module
    return args, {**kwargs, "memory_key_padding_mask": None}


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lens: torch.Tensor,
    target_lens: torch.Tensor,
    blank_index: int,
    reduction: str = "batchmean",
    length_rule: CTCLengthRule = "truncate",
) -> torch.Tensor:
    """CTC loss with 0.5.9's truncated (default) or 1.1.2's rounded absolute lengths.

    0.5.9 turns the relative lengths into frame and token counts with ``.int()``; float32 relative
    lengths such as 7/23 then give 6.9999995 tokens, and the last token of that target is dropped.

    Parameters
    ----------
    log_probs : torch.Tensor
        [shape=(batch, frames, n_tokens)] log-probabilities.
    targets : torch.Tensor
        [shape=(batch, max_target_len)] token ids, no blanks.
    input_lens, target_lens : torch.Tensor
        [shape=(batch,)] lengths relative to ``frames`` and ``max_target_len`` (0..1).
    blank_index : int
        Index of the CTC blank.
    reduction : str
        As SpeechBrain's ``ctc_loss`` (``"batchmean"``: sum / batch size).
    length_rule : {"truncate", "round"}
        ``"truncate"``: 0.5.9; ``"round"``: SpeechBrain 1.1.2's ``ctc_loss`` itself.

    Returns
    -------
    torch.Tensor
        The loss (a scalar for the reductions the recipe uses).
    """
    _check_choice("length_rule", length_rule, ("truncate", "round"))
    if length_rule == "truncate":
        # rel * n is an integer when exact; .int() floors it, so the ratios passed on below round to it
        input_lens = (input_lens * log_probs.shape[1]).int().float() / log_probs.shape[1]
        target_lens = (target_lens * targets.shape[1]).int().float() / targets.shape[1]
    return sb_ctc_loss(log_probs, targets, input_lens, target_lens, blank_index, reduction=reduction)


class InputNormalization(SBInputNormalization):
    """SpeechBrain's global ``InputNormalization`` with 0.5.9's update rule (default) or 1.1.2's.

    0.5.9 rule, while ``epoch < update_until_epoch`` (and on the very first call): for every utterance
    the mean and the **unbiased** standard deviation (floored at :data:`STD_FLOOR`) over its first
    ``round(rel_len * T)`` frames; the batch statistics are their averages; the running statistics are
    updated with weight ``1 / (count + 1)``; then the whole padded tensor is normalised. ``count``
    counts calls, frozen or not, in training and in evaluation mode. 1.1.2 pools frame statistics
    (biased variance), counts frames and only updates in training mode.

    Both rules share the checkpoint format ``{count, glob_mean, glob_std}``; a 0.5.x ``normalizer.ckpt``
    (count = calls) therefore suits the 0.5.9 rule and a 1.x one (count = frames) the 1.1.2 rule. Once
    frozen, the two normalise identically.

    Parameters
    ----------
    *args, **kwargs
        Those of :class:`speechbrain.processing.features.InputNormalization`.
    update_rule : {"sb05", "sb1"}
        ``"sb05"``: 0.5.9 (``norm_type`` must be ``"global"``); ``"sb1"``: 1.1.2.
    """

    def __init__(self, *args, update_rule: NormalizerUpdate = "sb05", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_choice("update_rule", update_rule, ("sb05", "sb1"))
        if update_rule == "sb05" and (self.norm_type != "global" or not self.std_norm):
            raise ValueError("update_rule='sb05' is implemented for norm_type='global' with std_norm only")
        self.update_rule = update_rule

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, epoch: int | None = None):
        """Normalise ``x`` [shape=(batch, frames, n_feats)] with the global statistics (updated first)."""
        if self.update_rule == "sb1":
            return super().forward(x, lengths, epoch=epoch)
        if lengths is None:
            lengths = torch.ones(x.shape[0], device=x.device)
        if self.count == 0 or epoch is None or epoch < self.update_until_epoch:
            self._update_sb05(x, lengths)
        self.count = self.count + 1
        return (x - self.glob_mean.to(x.device)) / self.glob_std.to(x.device)

    def _update_sb05(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """0.5.9's running update of ``glob_mean`` / ``glob_std`` from the batch ``x``."""
        means, stds = [], []
        for utterance, rel_len in zip(x, lengths):
            frames = utterance[: int(torch.round(rel_len * x.shape[1]))]
            means.append(torch.mean(frames, dim=0))
            std = torch.std(frames, dim=0)
            stds.append(torch.max(std, STD_FLOOR * torch.ones_like(std)))
        batch_mean = torch.mean(torch.stack(means), dim=0).detach()
        batch_std = torch.mean(torch.stack(stds), dim=0).detach()
        if self.count == 0:
            self.glob_mean, self.glob_std = batch_mean, batch_std
            return
        weight = 1 / (self.count + 1)
        self.glob_mean = (1 - weight) * self.glob_mean.to(x.device) + weight * batch_mean
        self.glob_std = (1 - weight) * self.glob_std.to(x.device) + weight * batch_std
