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
from typing import Literal

import torch

logger = logging.getLogger(__name__)

CTCScorerName = Literal["fast", "reference"]


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
        The step limit of this search.
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
    finished: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = field(default_factory=list, repr=False)

    def select(self, index: int) -> SearchResult:
        """The result of utterance ``index`` alone (batch size 1)."""
        return SearchResult(
            hyps=[self.hyps[index]], topk_hyps=self.topk_hyps[index:index + 1],
            topk_scores=self.topk_scores[index:index + 1], topk_lengths=self.topk_lengths[index:index + 1],
            hyp_log_probs=[self.hyp_log_probs[index]], dec_out=[self.dec_out[index]],
            dec_input_tokens=[self.dec_input_tokens[index]], n_steps=[self.n_steps[index]],
            max_decode_steps=self.max_decode_steps,
            finished=[self.finished[index]] if self.finished else [],
        )


# ============================================================================ CTC prefix scorers
class _CTCPrefixScorerBase:
    """Shared set-up: CTC log-posteriors with padded frames masked, per utterance of the batch.

    ``x`` holds the log-posteriors ``[B, T, V]``; frames at or after ``enc_lens`` get ``minus_inf`` for
    every non-blank token and 0 for blank, as in the original, so that padded frames cannot emit.
    """

    def __init__(self, ctc_log_probs: torch.Tensor, enc_lens: torch.Tensor, beam_size: int,
                 blank_index: int, eos_index: int, minus_inf: float):
        self.batch_size, self.max_enc_len, self.vocab_size = ctc_log_probs.shape
        self.beam_size = beam_size
        self.n_beams = self.batch_size * beam_size
        self.blank_index = blank_index
        self.eos_index = eos_index
        self.minus_inf = minus_inf
        self.device = ctc_log_probs.device
        frames = torch.arange(self.max_enc_len, device=self.device)
        padded = frames.unsqueeze(0) >= enc_lens.to(self.device).unsqueeze(1)  # [B, T]
        x = ctc_log_probs.masked_fill(padded.unsqueeze(-1), minus_inf)
        x[:, :, blank_index] = x[:, :, blank_index].masked_fill(padded, 0.0)
        self.xnb = x.transpose(0, 1).contiguous()  # [T, B, V]: log p_t(c)
        self.xb = self.xnb[:, :, blank_index]  # [T, B]: log p_t(blank)
        self.last_frame = (enc_lens.to(self.device).long() - 1).repeat_interleave(beam_size)  # [N]
        self.batch_of_beam = torch.arange(self.batch_size, device=self.device).repeat_interleave(beam_size)
        self.beam_offset = torch.arange(self.batch_size, device=self.device) * beam_size
        self.padded = bool(padded.any())

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
        last_char = g[:, -1] if prefix_length > 0 else torch.zeros(n_beams, dtype=torch.long, device=self.device)
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

    def forward_step(self, g: torch.Tensor, state):
        """Score every token as the next label of each prefix ``g``; see the reference version."""
        n_beams, prefix_length = g.shape
        beams = torch.arange(n_beams, device=self.device)
        last_char = g[:, -1] if prefix_length > 0 else torch.zeros(n_beams, dtype=torch.long, device=self.device)
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
        terms = r_prev[start - 1:end - 1, 1].double() + x_last[start:end]
        psi[beams, last_char] = torch.logsumexp(terms, 0)
        psi = psi.float()
        psi[beams, self.eos_index] = r_sum[self.last_frame, beams]
        psi[:, self.blank_index] = self.minus_inf
        self._pending = (r_prev, r_sum, last_char, prefix_length)
        return psi - psi_prev, psi

    def _psi_new_token(self, r_sum: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """``log sum_{t=start}^{end-1} exp(r_sum[t-1] + x_t(c))`` for all beams and tokens, float64."""
        a = r_sum[start - 1:end - 1].double().T  # [N, Tr]
        row_max = a.amax(1, keepdim=True).clamp(min=-1e300)
        prod = torch.bmm(torch.exp(a - row_max).view(self.batch_size, self.beam_size, -1),
                         self.exp_x[:, start:end])  # [B, beam, V]
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
        terms = phi[start - 1:-1].double() - prev_nb
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
            if self.padded or not bool(torch.isfinite(x_tok[start:]).all()):
                self._recurse_loop(r, phi, x_tok, x_blank, start)
            else:
                self._recurse_scan(r, phi, x_tok, x_blank, start)
        return r, psi_sel


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

    def __init__(self, transformer: torch.nn.Module, enc_states: torch.Tensor, beam_size: int):
        self.model = transformer
        self.layers = list(transformer.decoder.layers)
        self.beam_size = beam_size
        self.batch_size = enc_states.shape[0]
        self.n_heads = self.layers[0].self_attn.att.num_heads
        self.cache_k: list[torch.Tensor | None] = [None] * len(self.layers)
        self.cache_v: list[torch.Tensor | None] = [None] * len(self.layers)
        self.cross = [self._project_memory(layer.multihead_attn.att, enc_states) for layer in self.layers]
        self.position = 0

    @staticmethod
    def supports(transformer: torch.nn.Module) -> bool:
        """True for regular MHA + fixed sine positions (E032's TransformerASR)."""
        return (getattr(transformer, "attention_type", None) == "regularMHA"
                and getattr(transformer, "positional_encoding_type", None) == "fixed_abs_sine"
                and all(isinstance(getattr(layer.self_attn, "att", None), torch.nn.MultiheadAttention)
                        and isinstance(getattr(layer.multihead_attn, "att", None), torch.nn.MultiheadAttention)
                        and layer.self_attn.att._qkv_same_embed_dim
                        for layer in transformer.decoder.layers))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., d]`` -> ``[..., heads, d / heads]``."""
        return x.view(*x.shape[:-1], self.n_heads, -1)

    def _project_memory(self, mha: torch.nn.MultiheadAttention, enc: torch.Tensor):
        d = mha.embed_dim
        w, b = mha.in_proj_weight, mha.in_proj_bias
        k = torch.nn.functional.linear(enc, w[d:2 * d], b[d:2 * d])
        v = torch.nn.functional.linear(enc, w[2 * d:], b[2 * d:])
        return self._split(k).transpose(1, 2), self._split(v).transpose(1, 2)  # [B, H, T, dh]

    @staticmethod
    def _self_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One query per beam on its own cache: ``q [B, beam, H, dh]``, ``k, v [B, beam, H, S, dh]``."""
        scores = (q.unsqueeze(-2) @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [B, beam, H, 1, S]
        return (torch.softmax(scores, dim=-1) @ v).squeeze(-2)  # [B, beam, H, dh]

    @staticmethod
    def _cross_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Beams as query positions on the shared encoder memory: ``q [B, beam, H, dh]``, ``k, v [B, H, T, dh]``."""
        q = q.transpose(1, 2)  # [B, H, beam, dh]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [B, H, beam, T]
        return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)  # [B, beam, H, dh]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder output (after the final norm) ``[N, d]`` of the new position for the last tokens ``[N]``."""
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
    ctc_scorer : {"fast", "reference"}
        Implementation of the CTC prefix scorer (see module docstring).
    decoder_cache : bool
        Decode only the new position at each step, with key/value caches (:class:`IncrementalDecoder`);
        False re-decodes every prefix at every step as the original (same numbers up to rounding).

    Notes
    -----
    Calling the module (``searcher(enc_states, wav_lens)``) returns ``(hyps, topk_scores)`` as
    SpeechBrain 0.5.x's searchers do, for training-time validation; :meth:`search` returns a
    :class:`SearchResult` with the decoder states. No LM, EOS threshold, coverage penalty or attention
    shift constraint (E032 switches them off).
    """

    def __init__(self, modules, bos_index: int, eos_index: int, blank_index: int, min_decode_ratio: float,
                 max_decode_ratio: float, beam_size: int, ctc_weight: float, temperature: float = 1.0,
                 length_normalization: bool = True, topk: int = 10, minus_inf: float = -1e20,
                 ctc_scorer: CTCScorerName = "fast", decoder_cache: bool = True):
        super().__init__()
        if len(modules) != 3:
            raise ValueError(f"modules must be [Transformer, seq_lin, ctc_lin], got {len(modules)} modules")
        self.transformer, self.seq_lin, self.ctc_lin = modules
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if ctc_weight > 0 and len({bos_index, eos_index, blank_index}) < 3:
            raise ValueError("joint CTC/attention decoding needs distinct bos, eos and blank indices, got "
                             f"{bos_index}, {eos_index}, {blank_index}")
        if ctc_scorer not in ("fast", "reference"):
            raise ValueError(f"ctc_scorer must be 'fast' or 'reference', got {ctc_scorer!r}")
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

    def _decoder_step(self, prefix: torch.Tensor, enc_states: torch.Tensor):
        """Decode the whole prefix of every beam; log-probs of the next token and the decoder output."""
        dec_out, _ = self.transformer.decode(prefix, enc_states)  # no source mask, as the recipe's copy
        # only the last position is scored (the original scored all positions and kept the last)
        log_probs = torch.log_softmax(self.seq_lin(dec_out[:, -1]) / self.temperature, dim=-1)
        return log_probs, dec_out

    def _make_ctc_scorer(self, enc_states: torch.Tensor, enc_lens: torch.Tensor):
        ctc_log_probs = torch.log_softmax(self.ctc_lin(enc_states), dim=-1)
        cls = CTCPrefixScorerFast if self.ctc_scorer == "fast" else CTCPrefixScorerReference
        return cls(ctc_log_probs, enc_lens, self.beam_size, self.blank_index, self.eos_index, self.minus_inf)

    @torch.no_grad()
    def search(self, enc_states: torch.Tensor, wav_lens: torch.Tensor | None = None) -> SearchResult:
        """Run the search on encoder states ``[B, T, d_model]`` (relative lengths ``wav_lens`` ``[B]``).

        Returns
        -------
        SearchResult
        """
        if enc_states.ndim != 3:
            raise ValueError(f"enc_states must be [batch, frames, d_model], got shape {tuple(enc_states.shape)}")
        batch_size, n_frames, _ = enc_states.shape
        device = enc_states.device
        if wav_lens is None:
            wav_lens = torch.ones(batch_size, device=device)
        enc_lens = torch.round(n_frames * wav_lens.to(device)).int()
        beam = self.beam_size
        n_beams = batch_size * beam
        beam_offset = torch.arange(batch_size, device=device) * beam

        ctc_scorer = self._make_ctc_scorer(enc_states, enc_lens) if self.ctc_weight > 0 else None
        ctc_state = None
        incremental = None
        if self.decoder_cache and IncrementalDecoder.supports(self.transformer):
            incremental = IncrementalDecoder(self.transformer, enc_states, beam)
        else:
            enc_inflated = torch.repeat_interleave(enc_states, beam, dim=0)

        inp_tokens = torch.full((n_beams,), self.bos_index, dtype=torch.long, device=device)
        prefix = torch.empty(n_beams, 0, dtype=torch.long, device=device)  # decoder input (starts with bos)
        fed = prefix
        sequence_scores = torch.full((n_beams,), float("-inf"), device=device)
        sequence_scores[beam_offset] = 0.0  # only the first beam of each utterance is live at t = 0
        finished: list[list[tuple]] = [[] for _ in range(batch_size)]
        alive_seq = torch.empty(n_beams, 0, dtype=torch.long, device=device)
        alive_log_probs = torch.empty(n_beams, 0, device=device)
        min_steps = int(n_frames * self.min_decode_ratio)
        max_steps = max(1, int(n_frames * self.max_decode_ratio))  # the original fails on 0 steps
        dec_out = torch.empty(n_beams, 0, enc_states.shape[-1], device=device)
        history = dec_out  # decoder outputs along each beam's prefix (incremental decoding)
        scores = sequence_scores
        n_steps = 0
        # per utterance: slot 0's decoder output and prefix at the step its search ends (batch-independent)
        snapshot: list[tuple[torch.Tensor, torch.Tensor, int] | None] = [None] * batch_size

        for t in range(max_steps):
            if all(len(f) == beam for f in finished):
                break
            fed = torch.cat([prefix, inp_tokens.unsqueeze(1)], dim=1)
            if incremental is not None:
                new_out = incremental.step(inp_tokens)
                dec_out = torch.cat([history, new_out.unsqueeze(1)], dim=1)
                att_log_probs = torch.log_softmax(self.seq_lin(new_out) / self.temperature, dim=-1)
            else:
                att_log_probs, dec_out = self._decoder_step(fed, enc_inflated)
            n_steps += 1
            log_probs = self.att_weight * att_log_probs
            vocab = log_probs.shape[-1]
            if t < min_steps:
                log_probs[:, self.eos_index] = self.minus_inf
            if ctc_scorer is not None:
                log_probs[:, self.blank_index] = self.minus_inf
                ctc_inc, ctc_state = ctc_scorer.forward_step(alive_seq, ctc_state)
                log_probs = log_probs + self.ctc_weight * ctc_inc
            fused = log_probs.reshape(batch_size, -1)  # per-token log-probs kept for the hypotheses

            cand_scores = sequence_scores.unsqueeze(1) + log_probs
            if self.length_normalization:
                cand_scores = cand_scores / (t + 1)
            scores, candidates = cand_scores.view(batch_size, -1).topk(beam, dim=-1)
            inp_tokens = (candidates % vocab).view(n_beams)
            scores = scores.view(n_beams)
            sequence_scores = scores * (t + 1) if self.length_normalization else scores
            predecessors = (torch.div(candidates, vocab, rounding_mode="floor")
                            + beam_offset.unsqueeze(1)).view(n_beams)

            prefix = fed[predecessors]
            if incremental is not None:
                incremental.permute(predecessors)
                history = dec_out[predecessors]
            if ctc_scorer is not None:
                ctc_state = ctc_scorer.permute_mem(ctc_state, candidates)
            alive_seq = torch.cat([alive_seq[predecessors], inp_tokens.unsqueeze(1)], dim=-1)
            step_log_probs = fused.gather(1, candidates).view(n_beams)
            alive_log_probs = torch.cat([alive_log_probs[predecessors], step_log_probs.unsqueeze(1)], dim=-1)

            is_eos = inp_tokens.eq(self.eos_index)
            self._store_finished(is_eos, alive_seq, alive_log_probs, scores, finished)
            for utt in range(batch_size):
                if snapshot[utt] is None and len(finished[utt]) == beam:
                    snapshot[utt] = (dec_out[utt * beam], fed[utt * beam], n_steps)
            sequence_scores = sequence_scores.masked_fill(is_eos, float("-inf"))
            if not self.length_normalization:
                # the original masks its score tensor in place, which without length normalisation is
                # also the one the fill-up branch below stores
                scores = sequence_scores

        if not all(len(f) == beam for f in finished):  # step limit: store every live beam as it is
            everything = torch.ones(n_beams, dtype=torch.bool, device=device)
            self._store_finished(everything, alive_seq, alive_log_probs, scores, finished)

        snapshot = [snap if snap is not None else (dec_out[utt * beam], fed[utt * beam], n_steps)
                    for utt, snap in enumerate(snapshot)]
        result = self._top_hypotheses(finished)
        return SearchResult(
            hyps=result[0], topk_hyps=result[1], topk_scores=result[2], topk_lengths=result[3],
            hyp_log_probs=result[4], dec_out=[snap[0] for snap in snapshot],
            dec_input_tokens=[snap[1] for snap in snapshot], n_steps=[snap[2] for snap in snapshot],
            max_decode_steps=max_steps, finished=finished,
        )

    def _store_finished(self, mask, alive_seq, alive_log_probs, scores, finished) -> None:
        """Append the beams flagged in ``mask`` (in beam order) until an utterance has ``beam_size``."""
        for index in torch.nonzero(mask, as_tuple=True)[0].tolist():
            utt = index // self.beam_size
            if len(finished[utt]) < self.beam_size:
                finished[utt].append((alive_seq[index], alive_log_probs[index], scores[index].clone()))

    def _top_hypotheses(self, finished):
        """Rank the finished hypotheses of each utterance by their (normalised) score."""
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
        flat = (indices + torch.arange(batch_size, device=indices.device).unsqueeze(1) * self.beam_size).view(-1)
        topk_hyps = padded[flat].view(batch_size, self.topk, -1)
        topk_lengths = lengths[flat.cpu()].view(batch_size, self.topk)
        best = topk_hyps[:, 0, :].tolist()
        hyps = [h[: h.index(self.eos_index)] if self.eos_index in h else h for h in best]
        best_log_probs = [all_log_probs[i] for i in flat.view(batch_size, self.topk)[:, 0].tolist()]
        return hyps, topk_hyps, topk_scores, topk_lengths, best_log_probs


