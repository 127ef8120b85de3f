"""Joint CTC/attention beam search of E032, returning the decoder states the recipe uses as representation.

This is our own port of the algorithm of SpeechBrain 0.5.x ``S2STransformerBeamSearch`` (``S2SBeamSearcher``
+ ``CTCPrefixScorer`` in full-vocabulary mode), as modified by the recipe's ``transformer_cpc1_decoder.py``
(``docs/original_recipe.md`` §4.3). SpeechBrain 1.x's searcher is different and is not used.

Per decoding step ``t`` (one call of the transformer decoder on the whole prefix of every beam):

1. attention log-probabilities ``log_softmax(seq_lin(dec) / temperature)`` of the last position, times
   ``1 - ctc_weight``; EOS is blocked (``minus_inf``) while ``t < min_decode_steps``; blank is blocked;
2. plus ``ctc_weight`` times the CTC prefix-score increment ``psi(g + c) - psi(g)`` of every token ``c``
   (Watanabe et al. 2017, Algorithm 2; ``psi(g + eos)`` is the probability of the complete prefix ``g``);
3. candidate score = beam score + fused log-prob, divided by ``t + 1`` (length normalisation) for
   the top-``beam_size`` selection over all beams x tokens, then multiplied back;
4. a candidate ending in EOS is stored as a finished hypothesis with its *normalised* score and its
   beam is blocked; the search stops when ``beam_size`` hypotheses are finished, or after
   ``max_decode_steps = int(T_enc * max_decode_ratio)`` steps, when all live beams are stored as
   they are (the "fill-up" branch).

The decoder representation the recipe returns is the decoder output (after the final LayerNorm) of
**beam slot 0 at the last executed step**: a ``[steps, d_model]`` sequence over that slot's input prefix
``[bos, y1, ..., y_{steps-1}]``. It is usually not the final best hypothesis (§4.3, quirk 5 of the oracle
README). :class:`SearchResult` also carries that prefix, the best hypothesis, the top-k scores and the
fused per-step log-probs of the best hypothesis.

Two implementations of the CTC prefix scorer give the same decisions:

* ``ctc_scorer="reference"``: the original's arithmetic (a forward recursion over all encoder frames for
  every beam x token at every step, float32); vectorised over beams and tokens;
* ``ctc_scorer="fast"`` (default): the same quantities, computed without the per-token recursion.
  The prefix score of a new token only needs ``log sum_t exp(phi_{t-1} + x_t(c))``, which is one
  ``[beams, T] x [T, vocab]`` matrix product in float64 (after per-row/per-column max shifts); the
  forward variables are then recursed only for the ``beam_size`` selected prefixes. Cost per step
  drops from ``O(T * beams * vocab)`` recursion work to one matrix product. Differences to the
  reference are float rounding (<1e-6 on the oracle scores; same hypotheses and steps).

Reference: S. Watanabe et al., "Hybrid CTC/attention architecture for end-to-end speech recognition",
IEEE JSTSP 11(8), 2017 (prefix scoring, Algorithm 2).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Final, Literal

import torch

logger = logging.getLogger(__name__)

CTCScorerName = Literal["fast", "reference", "auto"]
# The fastest exact arithmetic per device type, (ctc_scorer, decoder_cache), taken by the setting
# "auto" (docs/asr_infer.md, "Measured"). CPU: measured (~9x the original's arithmetic with the
# demo-size model). CUDA: the same choice, from the arithmetic rather than a measurement at batch
# size: the original's per-token recursion keeps a [T, 2, beams, vocab] float32 tensor per step
# (12.7 GB for 32 utterances x 66 beams x 5000 tokens x 150 frames, looped over the frames) and
# re-decodes every prefix, while one H100 step at batch size 1 favoured it (0.015 s vs 0.022 s);
# run benchmarks/gpu_infer_check.sh and override ctc_scorer / decoder_cache if it says otherwise.
FASTEST_ARITHMETIC: Final[dict[str, tuple[str, bool]]] = {
    "cpu": ("fast", True),
    "cuda": ("fast", True),
}


@dataclass
class SearchResult:
    """Everything the beam search returns (batch size ``B``, usually 1).

    Attributes
    ----------
    hyps : list of list of int
        Best hypothesis per utterance, token ids without EOS.
    topk_hyps : torch.Tensor
        ``[B, topk, max_len]`` int64, zero-padded, EOS kept where the hypothesis ended with it.
    topk_scores : torch.Tensor
        ``[B, topk]`` final scores: sum of fused per-step log-probs (EOS step included) divided by
        the number of those steps.
    topk_lengths : torch.Tensor
        ``[B, topk]`` number of tokens of each top-k hypothesis (EOS included).
    hyp_log_probs : list of torch.Tensor
        Per utterance, fused per-step log-probs of the best hypothesis (``[len(hyp) (+1)]``).
    dec_out : list of torch.Tensor
        Per utterance, ``[n_steps, d_model]``: decoder output of beam slot 0 at the last step executed
        for that utterance (the recipe's decoder representation).
    dec_input_tokens : list of torch.Tensor
        Per utterance, ``[n_steps]``: the token prefix slot 0 fed to the decoder at that step (starts
        with BOS).
    n_steps : list of int
        Per utterance, the number of steps a search of that utterance alone executes (the step at
        which its ``beam_size`` hypotheses were complete, or the step limit).
    max_decode_steps : int
        The step limit of this search (the largest of ``step_limits``).
    step_limits : list of int
        Per utterance, its step limit ``int(T * max_decode_ratio)`` (at least 1), ``T`` being its
        own length in the exact batched search and the padded length otherwise.
    """

    hyps: list[list[int]]
    topk_hyps: torch.Tensor
    topk_scores: torch.Tensor
    topk_lengths: torch.Tensor
    hyp_log_probs: list[torch.Tensor]
    dec_out: list[torch.Tensor]
    dec_input_tokens: list[torch.Tensor]
    n_steps: list[int]
    max_decode_steps: int
    finished: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = field(
        default_factory=list, repr=False
    )
    step_limits: list[int] = field(default_factory=list)

    def select(self, index: int) -> SearchResult:
        """Utterance ``index``'s result alone (batch size 1, ``topk_hyps`` at its own width)."""
        width = 0
        if self.finished:
            width = max((len(hyp) for hyp, _, _ in self.finished[index]), default=0)
        return SearchResult(
            hyps=[self.hyps[index]],
            topk_hyps=self.topk_hyps[index : index + 1, :, : width or None],
            topk_scores=self.topk_scores[index : index + 1],
            topk_lengths=self.topk_lengths[index : index + 1],
            hyp_log_probs=[self.hyp_log_probs[index]],
            dec_out=[self.dec_out[index]],
            dec_input_tokens=[self.dec_input_tokens[index]],
            n_steps=[self.n_steps[index]],
            max_decode_steps=self.step_limits[index] if self.step_limits else self.max_decode_steps,
            finished=[self.finished[index]] if self.finished else [],
            step_limits=[self.step_limits[index]] if self.step_limits else [],
        )


# ============================================================================ CTC prefix scorers
class _CTCPrefixScorerBase:
    """Shared set-up: CTC log-posteriors with padded frames masked, per utterance of the batch.

    ``x`` holds the log-posteriors ``[B, T, V]``; frames at or after ``enc_lens`` get ``minus_inf`` for
    every non-blank token and 0 for blank, as in the original, so that padded frames cannot emit.
    With ``length_aware`` (the exact batched search), the fast scorer also solves padded batches in
    closed form and ignores each utterance's padded frames when shifting its sums, so that every
    utterance scores as it does alone; without it, padded batches use the original's frame loop.
    """

    def __init__(
        self,
        ctc_log_probs: torch.Tensor,
        enc_lens: torch.Tensor,
        beam_size: int,
        blank_index: int,
        eos_index: int,
        minus_inf: float,
        length_aware: bool = True,
    ):
        self.batch_size, self.max_enc_len, self.vocab_size = ctc_log_probs.shape
        self.beam_size = beam_size
        self.blank_index = blank_index
        self.eos_index = eos_index
        self.minus_inf = minus_inf
        self.length_aware = length_aware
        self.device = ctc_log_probs.device
        self.enc_lens = enc_lens.to(self.device).long()
        frames = torch.arange(self.max_enc_len, device=self.device)
        padded = frames.unsqueeze(0) >= self.enc_lens.unsqueeze(1)  # [B, T]
        x = ctc_log_probs.masked_fill(padded.unsqueeze(-1), minus_inf)
        x[:, :, blank_index] = x[:, :, blank_index].masked_fill(padded, 0.0)
        self.xnb = x.transpose(0, 1).contiguous()  # [T, B, V]: log p_t(c)
        self._index_utterances()

    def _index_utterances(self) -> None:
        """Beam-level indices of the current utterances (after construction or :meth:`keep`)."""
        self.batch_size = self.xnb.shape[1]
        self.max_enc_len = self.xnb.shape[0]
        self.n_beams = self.batch_size * self.beam_size
        self.xb = self.xnb[:, :, self.blank_index]  # [T, B]: log p_t(blank)
        self.last_frame = (self.enc_lens - 1).repeat_interleave(self.beam_size)  # [N]
        utterances = torch.arange(self.batch_size, device=self.device)
        self.batch_of_beam = utterances.repeat_interleave(self.beam_size)
        self.beam_offset = torch.arange(self.batch_size, device=self.device) * self.beam_size
        frames = torch.arange(self.max_enc_len, device=self.device)
        self.frame_valid = frames.unsqueeze(1) <= self.last_frame.unsqueeze(0)  # [T, N]
        self.padded = not bool(self.frame_valid.all())

    def keep(self, utterances: torch.Tensor, n_frames: int) -> None:
        """Keep only ``utterances`` (indices ``[B']``) and the first ``n_frames`` frames.

        Frames beyond an utterance's length contribute nothing to its scores, so dropping them (and
        the finished utterances) changes no kept utterance's result.
        """
        self.xnb = self.xnb[:n_frames, utterances].contiguous()
        self.enc_lens = self.enc_lens[utterances]
        self._index_utterances()

    def initial_r(self) -> torch.Tensor:
        """Forward variables of the empty prefix: ``[T, 2, N]`` (non-blank: -inf; blank: cumulated)."""
        r = torch.full((self.max_enc_len, 2, self.n_beams), self.minus_inf, device=self.device)
        r[:, 1] = torch.cumsum(self.xb, 0).repeat_interleave(self.beam_size, dim=1)
        return r


class CTCPrefixScorerReference(_CTCPrefixScorerBase):
    """The original full-vocabulary CTC prefix scorer, op for op, vectorised over beams and tokens."""

    def forward_step(self, g: torch.Tensor, state):
        """Score every token as the next label of each prefix ``g`` (``[N, L]``).

        Returns
        -------
        increment : torch.Tensor
            ``[N, V]`` ``psi(g + c) - psi(g)``.
        state : tuple
            ``(r, psi)`` of all candidates, for :meth:`permute_mem`.
        """
        n_beams, prefix_length = g.shape
        vocab = self.vocab_size
        last_char = (
            g[:, -1] if prefix_length > 0 else torch.zeros(n_beams, dtype=torch.long, device=self.device)
        )
        if state is None:
            r_prev, psi_prev = self.initial_r(), 0.0
        else:
            r_prev, psi_prev = state
        # x of each beam's utterance, broadcast over the beams: [T, 2, B, 1, V] (nb, b)
        x = torch.stack([self.xnb, self.xb.unsqueeze(-1).expand_as(self.xnb)], dim=1).unsqueeze(3)
        shape5 = (self.max_enc_len, 2, self.batch_size, self.beam_size, vocab)
        r = torch.full(shape5, self.minus_inf, device=self.device)
        if prefix_length == 0:
            r[0, 0] = x[0, 0]
        r_sum = torch.logsumexp(r_prev, 1)  # [T, N]
        phi = r_sum.unsqueeze(2).repeat(1, 1, vocab)  # [T, N, V]
        beams = torch.arange(n_beams, device=self.device)
        phi[:, beams, last_char] = r_prev[:, 1, :]  # last token repeated: only via a blank
        phi5 = phi.view(self.max_enc_len, self.batch_size, self.beam_size, vocab)
        start, end = max(1, prefix_length), self.max_enc_len
        for t in range(start, end):  # forward recursion over frames (Alg. 2, lines 11-12)
            rnb_prev, rb_prev = r[t - 1, 0], r[t - 1, 1]
            stacked = torch.stack([rnb_prev, phi5[t - 1], rnb_prev, rb_prev]).view(2, 2, *shape5[2:])
            r[t] = torch.logsumexp(stacked, 1) + x[t]
        psi_init = r[start - 1, 0].unsqueeze(0)
        phix = torch.cat((phi5[0].unsqueeze(0), phi5[:-1]), dim=0) + x[:, 0]
        psi = torch.logsumexp(torch.cat((phix[start:end], psi_init), dim=0), dim=0).view(n_beams, vocab)
        psi[beams, self.eos_index] = r_sum[self.last_frame, beams]  # (Alg. 2, line 3)
        psi[:, self.blank_index] = self.minus_inf
        return psi - psi_prev, (r.view(self.max_enc_len, 2, n_beams, vocab), psi)

    def permute_mem(self, state, candidates: torch.Tensor):
        """Keep the states of the selected candidates (``[B, beam]`` indices into ``beam * V``)."""
        r, psi = state
        flat = (candidates + self.beam_offset.unsqueeze(1) * self.vocab_size).view(-1)
        psi_sel = psi.reshape(-1)[flat].unsqueeze(1)  # [N, 1]
        r_sel = r.reshape(self.max_enc_len, 2, -1)[:, :, flat]  # [T, 2, N]
        return r_sel, psi_sel


class CTCPrefixScorerFast(_CTCPrefixScorerBase):
    """Same prefix scores as :class:`CTCPrefixScorerReference`, without the per-token recursion.

    For a token ``c`` that differs from the prefix's last token, ``phi_t = r_sum_t`` does not depend on
    ``c``, so ``psi(g + c) = log sum_{t >= start} exp(r_sum_{t-1} + log p_t(c))`` is a log-domain matrix
    product, evaluated as ``m_row + m_col + log(exp(A - m_row) @ exp(X - m_col))`` in float64. The few
    entries whose sum underflows are recomputed directly. The token equal to the last label, EOS and
    blank are filled in separately; the forward variables are recursed only for the selected prefixes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        x64 = self.xnb.double()  # [T, B, V]
        self.col_max = x64.amax(0).clamp(min=-1e300)  # [B, V]
        self.exp_x = torch.exp(x64 - self.col_max).permute(1, 0, 2).contiguous()  # [B, T, V]
        self._pending = None

    def keep(self, utterances: torch.Tensor, n_frames: int) -> None:
        """See :meth:`_CTCPrefixScorerBase.keep`."""
        super().keep(utterances, n_frames)
        self.col_max = self.col_max[utterances]
        self.exp_x = self.exp_x[utterances, :n_frames].contiguous()

    def forward_step(self, g: torch.Tensor, state):
        """Score every token as the next label of each prefix ``g``; see the reference version."""
        n_beams, prefix_length = g.shape
        beams = torch.arange(n_beams, device=self.device)
        last_char = (
            g[:, -1] if prefix_length > 0 else torch.zeros(n_beams, dtype=torch.long, device=self.device)
        )
        if state is None:
            r_prev, psi_prev = self.initial_r(), 0.0
        else:
            r_prev, psi_prev = state
        start, end = max(1, prefix_length), self.max_enc_len
        r_sum = torch.logsumexp(r_prev, 1)  # [T, N]
        psi = self._psi_new_token(r_sum, start, end)  # [N, V] float64
        if prefix_length == 0:  # a first label may also start at frame 0 (Alg. 2, line 6)
            x0 = self.xnb[0][self.batch_of_beam].double()
            psi = torch.logaddexp(psi, x0)
        # the last label again: only through a blank, phi = r_b
        x_last = self.xnb[:, self.batch_of_beam, last_char].double()  # [T, N]
        terms = r_prev[start - 1 : end - 1, 1].double() + x_last[start:end]
        psi[beams, last_char] = torch.logsumexp(terms, 0)
        psi = psi.float()
        psi[beams, self.eos_index] = r_sum[self.last_frame, beams]
        psi[:, self.blank_index] = self.minus_inf
        self._pending = (r_prev, r_sum, last_char, prefix_length)
        return psi - psi_prev, psi

    def _psi_new_token(self, r_sum: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """``log sum_{t=start}^{end-1} exp(r_sum[t-1] + x_t(c))`` for all beams and tokens, float64."""
        a = r_sum[start - 1 : end - 1].double().T  # [N, Tr]
        if self.length_aware and self.padded:  # shift by the utterance's own frames only, as alone
            a = a.masked_fill(~self.frame_valid[start:end].T, float("-inf"))
        row_max = a.amax(1, keepdim=True).clamp(min=-1e300)
        prod = torch.bmm(
            torch.exp(a - row_max).view(self.batch_size, self.beam_size, -1), self.exp_x[:, start:end]
        )  # [B, beam, V]
        prod = prod.view(self.n_beams, self.vocab_size)
        col_max = self.col_max[self.batch_of_beam]  # [N, V]
        psi = torch.log(prod) + row_max + col_max
        underflow = prod == 0
        if underflow.any():  # rare: recompute those entries directly in the log domain
            n_idx, c_idx = underflow.nonzero(as_tuple=True)
            x_sel = self.xnb[start:end, self.batch_of_beam[n_idx], c_idx].double()  # [Tr, K]
            psi[n_idx, c_idx] = torch.logsumexp(a[n_idx].T + x_sel, 0)
        return psi

    def _recurse_loop(self, r, phi, x_tok, x_blank, start: int) -> None:
        """Forward variables frame by frame (Alg. 2, lines 11-12), as the original, for N prefixes."""
        for t in range(start, self.max_enc_len):
            rnb_prev, rb_prev = r[t - 1, 0], r[t - 1, 1]
            stacked = torch.stack([rnb_prev, phi[t - 1], rnb_prev, rb_prev]).view(2, 2, self.n_beams)
            r[t] = torch.logsumexp(stacked, 1) + torch.stack([x_tok[t], x_blank[t]])

    @staticmethod
    def _recurse_scan(r, phi, x_tok, x_blank, start: int) -> None:
        """The same recursion solved in closed form with cumulative sums (float64).

        In the probability domain ``r_nb[t] = (r_nb[t-1] + phi[t-1]) x[t]`` and
        ``r_b[t] = (r_nb[t-1] + r_b[t-1]) x_blank[t]`` are first-order linear recurrences, so
        ``log r_nb[t] = C[t] + logcumsumexp_s(phi[s-1] - C[s-1])`` with ``C`` the cumulative sum of
        ``log x`` (and likewise for ``r_b``). Used when no frame is padded (masked values of -1e20
        would cancel catastrophically in ``C``).
        """
        x_nb, x_b = x_tok[start:].double(), x_blank[start:].double()
        init_nb, init_b = r[start - 1, 0].double(), r[start - 1, 1].double()
        cum_nb = torch.cumsum(x_nb, 0)
        prev_nb = torch.cat([torch.zeros_like(cum_nb[:1]), cum_nb[:-1]])
        terms = phi[start - 1 : -1].double() - prev_nb
        r_nb = cum_nb + torch.logaddexp(torch.logcumsumexp(terms, 0), init_nb)
        cum_b = torch.cumsum(x_b, 0)
        prev_b = torch.cat([torch.zeros_like(cum_b[:1]), cum_b[:-1]])
        r_nb_prev = torch.cat([init_nb.unsqueeze(0), r_nb[:-1]])
        r_b = cum_b + torch.logaddexp(torch.logcumsumexp(r_nb_prev - prev_b, 0), init_b)
        r[start:, 0] = r_nb.float()
        r[start:, 1] = r_b.float()

    def permute_mem(self, psi: torch.Tensor, candidates: torch.Tensor):
        """Recurse the forward variables of the selected prefixes only; keep their prefix scores."""
        r_prev, r_sum, last_char, prefix_length = self._pending
        flat = (candidates + self.beam_offset.unsqueeze(1) * self.vocab_size).view(-1)
        pred = flat // self.vocab_size  # predecessor beam of each selected candidate
        token = flat % self.vocab_size
        psi_sel = psi.reshape(-1)[flat].unsqueeze(1)
        phi = r_sum[:, pred].clone()  # [T, N]
        same = token == last_char[pred]
        phi[:, same] = r_prev[:, 1, pred[same]]
        utt = self.batch_of_beam[pred]
        x_tok = self.xnb[:, utt, token]  # [T, N]
        x_blank = self.xb[:, utt]  # [T, N]
        r = torch.full((self.max_enc_len, 2, self.n_beams), self.minus_inf, device=self.device)
        if prefix_length == 0:
            r[0, 0] = x_tok[0]
        start = max(1, prefix_length)
        if start < self.max_enc_len:
            if not bool(torch.isfinite(x_tok[start:]).all()):
                self._recurse_loop(r, phi, x_tok, x_blank, start)
            elif not self.padded:
                self._recurse_scan(r, phi, x_tok, x_blank, start)
            elif self.length_aware and bool((self.last_frame >= start).all()):
                self._recurse_scan_padded(r, phi, x_tok, x_blank, start)
            else:
                self._recurse_loop(r, phi, x_tok, x_blank, start)
        return r, psi_sel

    def _recurse_scan_padded(self, r, phi, x_tok, x_blank, start: int) -> None:
        """:meth:`_recurse_scan` for a padded batch whose prefixes all start before their end.

        The scan runs on posteriors set to 1 (log 0) on padded frames, which leaves every valid
        frame as it is alone (cumulative sums only look back); padded frames then get what the
        frame loop gives on the masked posteriors: no non-blank path (``minus_inf``) and the blank
        variable held at the prefix probability of the last frame.
        """
        pad = ~self.frame_valid  # [T, N]
        x_tok, x_blank = x_tok.masked_fill(pad, 0.0), x_blank.masked_fill(pad, 0.0)
        self._recurse_scan(r, phi, x_tok, x_blank, start)
        beams = torch.arange(self.n_beams, device=self.device)
        held = torch.logsumexp(r[self.last_frame, :, beams], dim=1)  # [N]
        r[:, 0] = r[:, 0].masked_fill(pad, self.minus_inf)
        r[:, 1] = torch.where(pad, held.unsqueeze(0), r[:, 1])


# ============================================================================ incremental decoder
class IncrementalDecoder:
    """Step-wise evaluation of a SpeechBrain ``TransformerASR`` decoder with key/value caches.

    The original re-decodes the whole prefix of every beam at every step. Because the decoder is causal,
    the outputs at earlier positions do not change, so each step only needs the new position: its
    self-attention reads cached keys/values of the earlier positions (permuted with the beams), and the
    cross-attention keys/values of the encoder output are computed once per utterance instead of once
    per beam and step. Same arithmetic up to float rounding (checked against the oracle); with the
    full-size model it removes most of the decoder's cost.

    Supports SpeechBrain's regular multi-head attention with fixed sinusoidal positions (E032's
    decoder), post-LN or pre-LN; :meth:`supports` says whether a model qualifies.
    """

    def __init__(
        self,
        transformer: torch.nn.Module,
        enc_states: torch.Tensor,
        beam_size: int,
        enc_lens: torch.Tensor | None = None,
    ):
        self.model = transformer
        self.layers = list(transformer.decoder.layers)
        self.beam_size = beam_size
        self.batch_size = enc_states.shape[0]
        self.n_heads = self.layers[0].self_attn.att.num_heads
        self.cache_k: list[torch.Tensor | None] = [None] * len(self.layers)
        self.cache_v: list[torch.Tensor | None] = [None] * len(self.layers)
        self.cross = [self._project_memory(layer.multihead_attn.att, enc_states) for layer in self.layers]
        self.position = 0
        # [B, 1, 1, T] True on padded frames (cross-attention key padding mask); None: no padding
        self.memory_pad: torch.Tensor | None = None
        if enc_lens is not None:
            frames = torch.arange(enc_states.shape[1], device=enc_states.device)
            pad = frames.unsqueeze(0) >= enc_lens.to(enc_states.device).unsqueeze(1)
            self.memory_pad = pad[:, None, None, :] if bool(pad.any()) else None

    def keep(self, utterances: torch.Tensor, n_frames: int) -> None:
        """Keep the caches of ``utterances`` only (indices ``[B']``) and the first ``n_frames``."""
        self.batch_size = len(utterances)
        self.cross = [(k[utterances, :, :n_frames], v[utterances, :, :n_frames]) for k, v in self.cross]
        self.cache_k = [c[utterances] for c in self.cache_k]
        self.cache_v = [c[utterances] for c in self.cache_v]
        if self.memory_pad is not None:
            pad = self.memory_pad[utterances, ..., :n_frames]
            self.memory_pad = pad if bool(pad.any()) else None

    @staticmethod
    def supports(transformer: torch.nn.Module) -> bool:
        """True for regular MHA + fixed sine positions (E032's TransformerASR)."""
        return (
            getattr(transformer, "attention_type", None) == "regularMHA"
            and getattr(transformer, "positional_encoding_type", None) == "fixed_abs_sine"
            and all(
                isinstance(getattr(layer.self_attn, "att", None), torch.nn.MultiheadAttention)
                and isinstance(getattr(layer.multihead_attn, "att", None), torch.nn.MultiheadAttention)
                and layer.self_attn.att._qkv_same_embed_dim
                for layer in transformer.decoder.layers
            )
        )

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., d]`` -> ``[..., heads, d / heads]``."""
        return x.view(*x.shape[:-1], self.n_heads, -1)

    def _project_memory(self, mha: torch.nn.MultiheadAttention, enc: torch.Tensor):
        d = mha.embed_dim
        w, b = mha.in_proj_weight, mha.in_proj_bias
        k = torch.nn.functional.linear(enc, w[d : 2 * d], b[d : 2 * d])
        v = torch.nn.functional.linear(enc, w[2 * d :], b[2 * d :])
        return self._split(k).transpose(1, 2), self._split(v).transpose(1, 2)  # [B, H, T, dh]

    @staticmethod
    def _self_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One query per beam on its own cache: ``q [B, beam, H, dh]``, ``k, v [B, beam, H, S, dh]``."""
        scores = (q.unsqueeze(-2) @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [B, beam, H, 1, S]
        return (torch.softmax(scores, dim=-1) @ v).squeeze(-2)  # [B, beam, H, dh]

    def _cross_attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Beams as query positions on the shared encoder memory.

        Shapes: ``q [B, beam, H, dh]``, ``k, v [B, H, T, dh]``.
        """
        q = q.transpose(1, 2)  # [B, H, beam, dh]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [B, H, beam, T]
        if self.memory_pad is not None:  # padded frames get weight exactly 0
            scores = scores.masked_fill(self.memory_pad, float("-inf"))
        return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)  # [B, beam, H, dh]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder output (after the final norm) ``[N, d]`` of the new position.

        For the last tokens ``[N]``.
        """
        n_beams = tokens.shape[0]
        shape = (self.batch_size, self.beam_size)
        x = self.model.custom_tgt_module(tokens.unsqueeze(1))[:, 0]
        x = (x + self.model.positional_encoding.pe[0, self.position]).view(*shape, -1)
        for i, layer in enumerate(self.layers):
            sa, ca = layer.self_attn.att, layer.multihead_attn.att
            d = sa.embed_dim
            h = layer.norm1(x) if layer.normalize_before else x
            qkv = torch.nn.functional.linear(h, sa.in_proj_weight, sa.in_proj_bias)
            q, k, v = (self._split(part) for part in qkv.split(d, dim=-1))  # [B, beam, H, dh]
            k, v = k.unsqueeze(3), v.unsqueeze(3)
            self.cache_k[i] = k if self.cache_k[i] is None else torch.cat([self.cache_k[i], k], dim=3)
            self.cache_v[i] = v if self.cache_v[i] is None else torch.cat([self.cache_v[i], v], dim=3)
            x = x + sa.out_proj(self._self_attend(q, self.cache_k[i], self.cache_v[i]).flatten(-2))
            if not layer.normalize_before:
                x = layer.norm1(x)
            h = layer.norm2(x) if layer.normalize_before else x
            q = self._split(torch.nn.functional.linear(h, ca.in_proj_weight[:d], ca.in_proj_bias[:d]))
            mem_k, mem_v = self.cross[i]
            x = x + ca.out_proj(self._cross_attend(q, mem_k, mem_v).flatten(-2))
            if not layer.normalize_before:
                x = layer.norm2(x)
            h = layer.norm3(x) if layer.normalize_before else x
            x = x + layer.pos_ffn(h)
            if not layer.normalize_before:
                x = layer.norm3(x)
        self.position += 1
        return self.model.decoder.norm(x).view(n_beams, -1)

    def permute(self, predecessors: torch.Tensor) -> None:
        """Reorder the caches to follow the selected beams (flat indices ``[N]``)."""
        for i in range(len(self.layers)):
            for cache in (self.cache_k, self.cache_v):
                flat = cache[i].flatten(0, 1)[predecessors]
                cache[i] = flat.view(self.batch_size, self.beam_size, *flat.shape[1:])


# ============================================================================ searcher
class TransformerBeamSearch(torch.nn.Module):
    """Joint CTC/attention beam search over a SpeechBrain ``TransformerASR`` (E032's ``test_search``).

    Parameters
    ----------
    modules : list of torch.nn.Module
        ``[Transformer, seq_lin, ctc_lin]``: the ``TransformerASR`` (its ``decode``), the attention
        output layer and the CTC output layer.
    bos_index, eos_index, blank_index : int
        Special token ids (must differ when ``ctc_weight > 0``).
    min_decode_ratio, max_decode_ratio : float
        Minimum / maximum number of steps as a fraction of the encoder length.
    beam_size : int
        Beam width (66 in E032). Should be smaller than the vocabulary minus blank, else ties among
        blocked candidates make the result depend on ``topk`` tie-breaking (oracle README §3).
    ctc_weight : float
        Weight of the CTC prefix score (0.4); the attention score gets ``1 - ctc_weight``.
    temperature : float
        Softmax temperature of the attention output.
    length_normalization : bool
        Rank candidates by score / (step + 1).
    topk : int
        Number of finished hypotheses returned (10 in the recipe; at most ``beam_size``).
    minus_inf : float
        Value used to block candidates (-1e20 as in the original).
    ctc_scorer : {"auto", "fast", "reference"}
        Implementation of the CTC prefix scorer (see module docstring); ``auto`` = the fastest on
        the device of the encoder states (:data:`FASTEST_ARITHMETIC`).
    decoder_cache : bool or "auto"
        Decode only the new position at each step, with key/value caches (:class:`IncrementalDecoder`);
        False re-decodes every prefix at every step as the original (same numbers up to rounding);
        ``auto`` as for ``ctc_scorer``.

    Notes
    -----
    Calling the module (``searcher(enc_states, wav_lens)``) returns ``(hyps, topk_scores)`` as
    SpeechBrain 0.5.x's searchers do, for training-time validation; :meth:`search` returns a
    :class:`SearchResult` with the decoder states. No LM, EOS threshold, coverage penalty or attention
    shift constraint (E032 switches them off).
    """

    def __init__(
        self,
        modules,
        bos_index: int,
        eos_index: int,
        blank_index: int,
        min_decode_ratio: float,
        max_decode_ratio: float,
        beam_size: int,
        ctc_weight: float,
        temperature: float = 1.0,
        length_normalization: bool = True,
        topk: int = 10,
        minus_inf: float = -1e20,
        ctc_scorer: CTCScorerName = "auto",
        decoder_cache: bool | Literal["auto"] = "auto",
    ):
        super().__init__()
        if len(modules) != 3:
            raise ValueError(f"modules must be [Transformer, seq_lin, ctc_lin], got {len(modules)} modules")
        self.transformer, self.seq_lin, self.ctc_lin = modules
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if ctc_weight > 0 and len({bos_index, eos_index, blank_index}) < 3:
            raise ValueError(
                "joint CTC/attention decoding needs distinct bos, eos and blank indices, got "
                f"{bos_index}, {eos_index}, {blank_index}"
            )
        if ctc_scorer not in ("fast", "reference", "auto"):
            raise ValueError(f"ctc_scorer must be 'fast', 'reference' or 'auto', " f"got {ctc_scorer!r}")
        if decoder_cache not in (True, False, "auto"):
            raise ValueError(f"decoder_cache must be True, False or 'auto', got {decoder_cache!r}")
        if beam_size < 1 or topk < 1:
            raise ValueError(f"need beam_size >= 1 and topk >= 1, got beam_size={beam_size}, topk={topk}")
        self.bos_index, self.eos_index, self.blank_index = bos_index, eos_index, blank_index
        self.min_decode_ratio, self.max_decode_ratio = min_decode_ratio, max_decode_ratio
        self.beam_size, self.topk = beam_size, min(topk, beam_size)  # at most beam_size are finished
        self.ctc_weight, self.att_weight = ctc_weight, 1.0 - ctc_weight
        self.temperature = temperature
        self.length_normalization = length_normalization
        self.minus_inf = minus_inf
        self.ctc_scorer = ctc_scorer
        self.decoder_cache = decoder_cache

    def forward(self, enc_states: torch.Tensor, wav_lens: torch.Tensor | None = None):
        """SpeechBrain-0.5-style call: ``(hyps, topk_scores)``; see :meth:`search`."""
        result = self.search(enc_states, wav_lens)
        return result.hyps, result.topk_scores

    def arithmetic(self, device: torch.device | str) -> tuple[str, bool]:
        """``(ctc_scorer, decoder_cache)`` used on ``device``: the settings, ``auto`` resolved.

        ``auto`` takes :data:`FASTEST_ARITHMETIC` of the device type; both choices give the same
        decisions (float rounding only).
        """
        fastest = FASTEST_ARITHMETIC.get(torch.device(device).type, FASTEST_ARITHMETIC["cpu"])
        scorer = fastest[0] if self.ctc_scorer == "auto" else self.ctc_scorer
        cache = fastest[1] if self.decoder_cache == "auto" else bool(self.decoder_cache)
        return scorer, cache

    def _decoder_step(self, prefix: torch.Tensor, enc_states: torch.Tensor, enc_lens: torch.Tensor | None):
        """Decode every beam's whole prefix: log-probs of the next token and the decoder output.

        ``enc_lens`` (``[N]`` frames, exact batched search with padding) masks each beam's padded
        frames in the cross-attention; the recipe's copy passed no source mask.
        """
        dec_out, _ = self.transformer.decode(prefix, enc_states, enc_len=enc_lens)
        # only the last position is scored (the original scored all positions and kept the last)
        log_probs = torch.log_softmax(self.seq_lin(dec_out[:, -1]) / self.temperature, dim=-1)
        return log_probs, dec_out

    def _make_ctc_scorer(
        self, enc_states: torch.Tensor, enc_lens: torch.Tensor, scorer: str, length_aware: bool
    ):
        ctc_log_probs = torch.log_softmax(self.ctc_lin(enc_states), dim=-1)
        cls = CTCPrefixScorerFast if scorer == "fast" else CTCPrefixScorerReference
        return cls(
            ctc_log_probs,
            enc_lens,
            self.beam_size,
            self.blank_index,
            self.eos_index,
            self.minus_inf,
            length_aware=length_aware,
        )

    @torch.no_grad()
    def search(
        self,
        enc_states: torch.Tensor,
        wav_lens: torch.Tensor | None = None,
        enc_lens: torch.Tensor | None = None,
    ) -> SearchResult:
        """Run the search on encoder states ``[B, T, d_model]``.

        Parameters
        ----------
        enc_states : torch.Tensor
            ``[B, T, d_model]`` encoder outputs, zero-padded at the end.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain's convention): the original's batch semantics,
            with step limits from the padded length ``T`` and no source mask (training
            validation). Equal to one-at-a-time searches only without padding.
        enc_lens : torch.Tensor or sequence of int, optional
            ``[B]`` lengths in frames: the **exact batched search**. Every utterance gets its own
            step limits, the cross-attention and the CTC prefix scores ignore its padded frames,
            and it leaves the batch when its search ends, so its result is the one a search of it
            alone gives (float rounding aside).

        Returns
        -------
        SearchResult
        """
        if enc_states.ndim != 3:
            raise ValueError(
                f"enc_states must be [batch, frames, d_model], got shape {tuple(enc_states.shape)}"
            )
        batch_size, n_frames, _ = enc_states.shape
        device = enc_states.device
        exact = enc_lens is not None
        if exact:
            enc_lens = torch.as_tensor(enc_lens, device=device).long()
            valid = enc_lens.shape == (batch_size,) and int(enc_lens.min()) >= 1
            if not valid or int(enc_lens.max()) > n_frames:
                raise ValueError(
                    f"enc_lens must be {batch_size} lengths in [1, {n_frames}] "
                    f"frames, got {enc_lens.tolist()}"
                )
            enc_states = enc_states[:, : int(enc_lens.max())]
            limit_frames = enc_lens.tolist()
        else:
            if wav_lens is None:
                wav_lens = torch.ones(batch_size, device=device)
            enc_lens = torch.round(n_frames * wav_lens.to(device)).int()
            limit_frames = [n_frames] * batch_size
        run = _SearchRun(self, enc_states, enc_lens, limit_frames, exact)
        return run.execute()

    def _store_finished(self, mask, alive_seq, alive_log_probs, scores, finished, utts) -> None:
        """Store the beams flagged in ``mask`` as finished (in beam order, ``beam_size`` at most).

        ``utts[j]`` is the utterance (index into ``finished``) of the ``j``-th group of beams.
        """
        for index in torch.nonzero(mask, as_tuple=True)[0].tolist():
            utt = utts[index // self.beam_size]
            if len(finished[utt]) < self.beam_size:
                finished[utt].append((alive_seq[index], alive_log_probs[index], scores[index].clone()))

    def _top_hypotheses(self, finished, own_width: bool = False):
        """Rank the finished hypotheses of each utterance by their (normalised) score.

        A best hypothesis that did not end with EOS is the row of the zero-padded top-k tensor, as
        the original (``batch_filter_seq2seq_output``): padded to the batch's longest hypothesis,
        or, with ``own_width``, to the longest of its own utterance (what a search alone gives).
        """
        all_hyps, all_scores, all_log_probs = [], [], []
        for utt_finished in finished:
            for hyp, log_probs, score in utt_finished:
                all_hyps.append(hyp)
                all_log_probs.append(log_probs)
                all_scores.append(score)
        batch_size = len(finished)
        padded = torch.nn.utils.rnn.pad_sequence(all_hyps, batch_first=True, padding_value=0)
        lengths = torch.tensor([len(h) for h in all_hyps], dtype=torch.int)
        score_table = torch.stack(all_scores).view(batch_size, -1)
        topk_scores, indices = score_table.topk(self.topk, dim=-1)
        flat = (indices + torch.arange(batch_size, device=indices.device).unsqueeze(1) * self.beam_size).view(
            -1
        )
        topk_hyps = padded[flat].view(batch_size, self.topk, -1)
        topk_lengths = lengths[flat.cpu()].view(batch_size, self.topk)
        best = topk_hyps[:, 0, :].tolist()
        if own_width:  # as alone: a best hypothesis without EOS keeps only its own padding
            widths = [max(len(hyp) for hyp, _, _ in utt_finished) for utt_finished in finished]
            best = [row[:width] for row, width in zip(best, widths, strict=True)]
        hyps = [h[: h.index(self.eos_index)] if self.eos_index in h else h for h in best]
        best_log_probs = [all_log_probs[i] for i in flat.view(batch_size, self.topk)[:, 0].tolist()]
        return hyps, topk_hyps, topk_scores, topk_lengths, best_log_probs


class _SearchRun:
    """One run of :meth:`TransformerBeamSearch.search`: the live beams and their update per step.

    Beams are grouped per utterance (``beam_size`` consecutive beams); ``utts[j]`` is the batch
    index of group ``j``. In the exact mode (``exact``), a group leaves the batch when its search
    ends, and the frames beyond the longest remaining utterance are dropped with it (:meth:`_drop`).
    """

    def __init__(
        self,
        searcher: TransformerBeamSearch,
        enc_states: torch.Tensor,
        enc_lens: torch.Tensor,
        limit_frames: list[int],
        exact: bool,
    ):
        s = self.s = searcher
        beam, batch_size = s.beam_size, enc_states.shape[0]
        device = self.device = enc_states.device
        self.exact, self.limit_frames = exact, limit_frames
        self.min_steps = [int(f * s.min_decode_ratio) for f in limit_frames]
        self.max_steps = [
            max(1, int(f * s.max_decode_ratio)) for f in limit_frames
        ]  # the original fails on 0
        self.utts = list(range(batch_size))
        scorer, cache = s.arithmetic(device)
        padded = exact and bool((enc_lens < enc_states.shape[1]).any())
        self.ctc = s._make_ctc_scorer(enc_states, enc_lens, scorer, exact) if s.ctc_weight > 0 else None
        self.ctc_state = None
        self.incremental, self.enc_inflated, self.mem_lens = None, None, None
        if cache and IncrementalDecoder.supports(s.transformer):
            self.incremental = IncrementalDecoder(
                s.transformer, enc_states, beam, enc_lens if padded else None
            )
        else:
            self.enc_inflated = torch.repeat_interleave(enc_states, beam, dim=0)
            self.mem_lens = enc_lens.repeat_interleave(beam) if padded else None
        n_beams = batch_size * beam
        self.inp_tokens = torch.full((n_beams,), s.bos_index, dtype=torch.long, device=device)
        self.prefix = torch.empty(n_beams, 0, dtype=torch.long, device=device)  # decoder input (from bos)
        self.sequence_scores = torch.full((n_beams,), float("-inf"), device=device)
        self.sequence_scores[::beam] = 0.0  # only the first beam of each utterance is live at t = 0
        self.scores = self.sequence_scores
        self.alive_seq = torch.empty(n_beams, 0, dtype=torch.long, device=device)
        self.alive_log_probs = torch.empty(n_beams, 0, device=device)
        # incremental decoding: the new position's decoder output per step and the beams'
        # predecessors, from which a slot's outputs along its prefix are gathered (_slot_outputs)
        self.outputs: list[torch.Tensor] = []
        self.pointers: list[torch.Tensor] = []
        self.finished: list[list[tuple]] = [[] for _ in range(batch_size)]
        # per utterance: slot 0's decoder output and prefix at the step its own search ends
        self.snapshot: list[tuple[torch.Tensor, torch.Tensor, int] | None] = [None] * batch_size

    def execute(self) -> SearchResult:
        """Search until every utterance has ended; the :class:`SearchResult` of the batch."""
        for t in range(max(self.max_steps)):
            fed, dec_out = self._step(t)
            ended = self._end_searches(t, fed, dec_out)
            if self.exact and ended:
                self._drop(ended)
            if all(snap is not None for snap in self.snapshot):
                break
        hyps, topk_hyps, topk_scores, topk_lengths, log_probs = self.s._top_hypotheses(
            self.finished, self.exact
        )
        snaps = [snap for snap in self.snapshot if snap is not None]
        return SearchResult(
            hyps=hyps,
            topk_hyps=topk_hyps,
            topk_scores=topk_scores,
            topk_lengths=topk_lengths,
            hyp_log_probs=log_probs,
            dec_out=[snap[0] for snap in snaps],
            dec_input_tokens=[snap[1] for snap in snaps],
            n_steps=[snap[2] for snap in snaps],
            max_decode_steps=max(self.max_steps),
            finished=self.finished,
            step_limits=self.max_steps,
        )

    def _attention_log_probs(self, fed: torch.Tensor):
        """Attention log-probs of the next token ``[N, V]`` and the decoder outputs ``[N, L, d]``.

        With the incremental decoder the outputs are kept per step instead (``None`` is returned).
        """
        s = self.s
        if self.incremental is None:
            return s._decoder_step(fed, self.enc_inflated, self.mem_lens)
        new_out = self.incremental.step(self.inp_tokens)
        self.outputs.append(new_out)
        return torch.log_softmax(s.seq_lin(new_out) / s.temperature, dim=-1), None

    def _slot_outputs(self, slot: int) -> torch.Tensor:
        """Decoder outputs ``[L, d]`` along the prefix of beam ``slot`` at the last step."""
        index = torch.tensor([slot], device=self.device)  # stays on the device: no sync per step
        rows = []
        for step in range(len(self.outputs) - 1, -1, -1):
            rows.append(self.outputs[step][index])
            if step > 0:
                index = self.pointers[step - 1][index]
        return torch.cat(rows[::-1])

    def _step(self, t: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoding step ``t`` of every live beam: the decoder input ``[N, t + 1]`` and output
        ``[N, t + 1, d]`` of the step (``None`` with the incremental decoder)."""
        s, beam = self.s, self.s.beam_size
        n_live = len(self.utts)
        n_beams = n_live * beam
        fed = torch.cat([self.prefix, self.inp_tokens.unsqueeze(1)], dim=1)
        att_log_probs, dec_out = self._attention_log_probs(fed)
        log_probs = s.att_weight * att_log_probs
        vocab = log_probs.shape[-1]
        blocked = [t < self.min_steps[u] for u in self.utts]  # EOS before the utterance's minimum
        if any(blocked):
            rows = torch.tensor(blocked, device=self.device).repeat_interleave(beam)
            log_probs[rows, s.eos_index] = s.minus_inf
        if self.ctc is not None:
            log_probs[:, s.blank_index] = s.minus_inf
            ctc_inc, self.ctc_state = self.ctc.forward_step(self.alive_seq, self.ctc_state)
            log_probs = log_probs + s.ctc_weight * ctc_inc
        fused = log_probs.reshape(n_live, -1)  # per-token log-probs kept for the hypotheses

        cand_scores = self.sequence_scores.unsqueeze(1) + log_probs
        if s.length_normalization:
            cand_scores = cand_scores / (t + 1)
        scores, candidates = cand_scores.view(n_live, -1).topk(beam, dim=-1)
        self.inp_tokens = (candidates % vocab).view(n_beams)
        scores = scores.view(n_beams)
        self.sequence_scores = scores * (t + 1) if s.length_normalization else scores
        beam_offset = torch.arange(n_live, device=self.device) * beam
        predecessors = (torch.div(candidates, vocab, rounding_mode="floor") + beam_offset.unsqueeze(1)).view(
            n_beams
        )
        self.prefix = fed[predecessors]
        if self.incremental is not None:
            self.incremental.permute(predecessors)
            self.pointers.append(predecessors)
        if self.ctc is not None:
            self.ctc_state = self.ctc.permute_mem(self.ctc_state, candidates)
        self.alive_seq = torch.cat([self.alive_seq[predecessors], self.inp_tokens.unsqueeze(1)], dim=-1)
        step_log_probs = fused.gather(1, candidates).view(n_beams)
        self.alive_log_probs = torch.cat(
            [self.alive_log_probs[predecessors], step_log_probs.unsqueeze(1)], dim=-1
        )
        is_eos = self.inp_tokens.eq(s.eos_index)
        s._store_finished(is_eos, self.alive_seq, self.alive_log_probs, scores, self.finished, self.utts)
        self.sequence_scores = self.sequence_scores.masked_fill(is_eos, float("-inf"))
        # the original masks its score tensor in place, which without length normalisation is also
        # the one its fill-up branch stores
        self.scores = scores if s.length_normalization else self.sequence_scores
        return fed, dec_out

    def _end_searches(self, t: int, fed: torch.Tensor, dec_out: torch.Tensor | None) -> list[int]:
        """End the searches that are complete after step ``t``; their group indices.

        A search ends when its ``beam_size`` hypotheses are finished, or at its step limit, where
        every live beam is stored as it is (the original's fill-up branch). Slot 0's decoder output
        and prefix at that step are the utterance's decoder representation.
        """
        beam = self.s.beam_size
        ended = []
        for j, utt in enumerate(self.utts):
            if self.snapshot[utt] is not None:  # ended earlier (kept in the batch outside the exact mode)
                continue
            full = len(self.finished[utt]) == beam
            if not full and t + 1 < self.max_steps[utt]:
                continue
            if not full:
                group = torch.zeros(len(self.utts) * beam, dtype=torch.bool, device=self.device)
                group[j * beam : (j + 1) * beam] = True
                self.s._store_finished(
                    group,
                    self.alive_seq,
                    self.alive_log_probs,
                    self.scores,
                    self.finished,
                    self.utts,
                )
            slot_out = dec_out[j * beam] if dec_out is not None else self._slot_outputs(j * beam)
            self.snapshot[utt] = (slot_out, fed[j * beam], t + 1)
            ended.append(j)
        return ended

    def _drop(self, ended: list[int]) -> None:
        """Remove the groups ``ended`` and the frames beyond the longest remaining utterance."""
        beam = self.s.beam_size
        keep = [j for j in range(len(self.utts)) if j not in set(ended)]
        self.utts = [self.utts[j] for j in keep]
        if not keep:
            return
        kept = torch.tensor(keep, device=self.device)
        n_frames = max(self.limit_frames[utt] for utt in self.utts)
        beams = (kept.unsqueeze(1) * beam + torch.arange(beam, device=self.device)).view(-1)
        for name in (
            "inp_tokens",
            "prefix",
            "sequence_scores",
            "scores",
            "alive_seq",
            "alive_log_probs",
        ):
            setattr(self, name, getattr(self, name)[beams])
        if self.incremental is not None:
            self.incremental.keep(kept, n_frames)
            self.pointers[-1] = self.pointers[-1][beams]  # the kept beams' predecessors
        else:
            self.enc_inflated = self.enc_inflated[beams, :n_frames]
            if self.mem_lens is not None:
                self.mem_lens = self.mem_lens[beams]
                self.mem_lens = None if bool((self.mem_lens == n_frames).all()) else self.mem_lens
        if self.ctc is not None:
            self.ctc.keep(kept, n_frames)
            r, psi = self.ctc_state
            self.ctc_state = (r[:n_frames, :, beams], psi[beams])
