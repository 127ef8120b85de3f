"""SpecAugment masks with the placement rule of SpeechBrain 0.5.x.

The original recipe uses 0.5.x ``SpecAugment``: time warp (window 5, bicubic), then 2 frequency masks
of width 0..29 bins, then 2 time masks of width 0..39 frames, masked values replaced by the mean of the
whole (batch) feature tensor. SpeechBrain 1.x's :class:`speechbrain.augment.freq_domain.Warping` is the
same warp, and :class:`~speechbrain.augment.freq_domain.SpectrogramDrop` draws the same widths and counts
and replaces with the same mean, but draws the mask start uniformly in ``[0, D)`` (1.1.2 passes
``max(1, D, -max_len)`` where 0.5.x had ``max(1, D - max_len)``), so its masks can run off the end of the
axis and come out shorter. :class:`MaskAlongAxis` keeps the 0.5.x rule: starts in
``[0, max(1, D - longest mask))`` for every mask of the batch. ``position_rule="sb1"`` gives the 1.x rule.
"""

from __future__ import annotations

from typing import Literal

import torch
from speechbrain.augment.freq_domain import SpectrogramDrop


class MaskAlongAxis(SpectrogramDrop):
    """Time or frequency masking as SpeechBrain 0.5.x ``SpecAugment.mask_along_axis``.

    Parameters
    ----------
    drop_length_low, drop_length_high : int
        Mask widths are drawn from ``[low, high)`` (frames or mel bins).
    drop_count_low, drop_count_high : int
        Number of masks per utterance, drawn from ``[low, high]``.
    replace : {"mean", "zeros"}
        Fill value: the mean of the whole input tensor (0.5.x ``replace_with_zero: False``) or zero.
    dim : int
        1 = time masks, 2 = frequency masks (input ``[batch, time, n_mels]``).
    position_rule : {"sb05", "sb1"}
        Mask starts in ``[0, max(1, D - longest mask))`` (0.5.x, default) or in ``[0, D)`` (1.x).
    """

    def __init__(
        self,
        drop_length_low: int = 0,
        drop_length_high: int = 30,
        drop_count_low: int = 2,
        drop_count_high: int = 2,
        replace: Literal["mean", "zeros"] = "mean",
        dim: int = 1,
        position_rule: Literal["sb05", "sb1"] = "sb05",
    ) -> None:
        super().__init__(drop_length_low, drop_length_high, drop_count_low, drop_count_high, replace, dim)
        if replace not in ("mean", "zeros"):
            raise ValueError(f"replace must be 'mean' or 'zeros', got {replace!r}")
        if position_rule not in ("sb05", "sb1"):
            raise ValueError(f"position_rule must be 'sb05' or 'sb1', got {position_rule!r}")
        self.position_rule = position_rule

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """Mask ``spectrogram`` ([shape=(batch, time, n_mels)]) in place and return it."""
        batch, n_frames, n_mels = spectrogram.shape
        axis_len = n_frames if self.dim == 1 else n_mels
        device = spectrogram.device
        n_masks = int(torch.randint(self.drop_count_low, self.drop_count_high + 1, (1,)))
        if n_masks == 0:
            return spectrogram
        width = torch.randint(self.drop_length_low, self.drop_length_high, (batch, n_masks, 1), device=device)
        start_high = axis_len if self.position_rule == "sb1" else max(1, axis_len - int(width.max()))
        start = torch.randint(0, start_high, (batch, n_masks, 1), device=device)
        pos = torch.arange(axis_len, device=device).view(1, 1, -1)
        mask = ((start <= pos) & (pos < start + width)).any(dim=1)  # [batch, axis_len]
        mask = mask.unsqueeze(2) if self.dim == 1 else mask.unsqueeze(1)
        fill = spectrogram.mean().detach() if self.replace == "mean" else 0.0
        return spectrogram.masked_fill_(mask, fill)
