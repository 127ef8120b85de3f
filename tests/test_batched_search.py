"""The exact batched beam search: many utterances of unequal lengths in one padded search.

Every utterance's result must be the one a search of it alone gives: hypotheses, top-k hypotheses,
step counts, step limits and slot-0 prefixes exactly; decoder representations and scores within 1e-5
(the oracle's tolerance; float32 kernels round a batch differently from one utterance). Checked for
every implementation of the CTC prefix scorer and the decoder (the fast ones and the original's
arithmetic), on the tiny oracle checkpoint, with inputs of 8-76 encoder frames and one utterance
whose search ends after a few steps while the others go on for tens of steps.
``E032_TEST_DEVICE=cuda`` runs them on a GPU (benchmarks/gpu_infer_check.sh).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from e032.asr import beam_search as bs
from e032.asr.model import load_asr
from tests.tiny_asr import TINY_ASR_SIZES

torch.set_num_threads(1)


REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "asr_reference"
TINY = {**TINY_ASR_SIZES, "test_beam_size": 10}
ATOL = 1e-5  # decoder states and scores (the oracle's tolerance)
DEVICE = os.environ.get("E032_TEST_DEVICE", "cpu")
ARITHMETIC = [("fast", True), ("reference", False), ("fast", False), ("reference", True)]


def _wav(name: str) -> np.ndarray:
    return np.load(DATA / "oracle" / f"{name}.npz")["wav"]


@pytest.fixture(scope="module")
def tiny_asr():
    return load_asr(DATA / "tiny_ckpt" / "save", overrides=TINY, device=DEVICE)


@pytest.fixture(scope="module")
def encodings(tiny_asr):
    """Encoder outputs of 7 utterances of 8-76 frames; the 0.3-s cut ends after 5 steps."""
    wavs = [
        _wav("in5_C"),
        _wav("in1_A_left_proc"),
        _wav("in0_A_left_ref"),
        _wav("in3_A_right_proc"),
        _wav("in4_B"),
        _wav("in5_C")[:4800],
        _wav("in5_C")[16000:40000],
    ]
    return [tiny_asr.encode(w) for w in wavs]


def _pad(encs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(e) for e in encs])
    return torch.nn.utils.rnn.pad_sequence(encs, batch_first=True).to(DEVICE), lens


def _assert_same(batched: bs.SearchResult, alone: bs.SearchResult) -> None:
    assert batched.hyps == alone.hyps
    assert batched.n_steps == alone.n_steps
    assert batched.max_decode_steps == alone.max_decode_steps
    assert torch.equal(batched.dec_input_tokens[0], alone.dec_input_tokens[0])
    width = alone.topk_hyps.shape[-1]  # a batch zero-pads the top-k hypotheses to its longest
    assert torch.equal(batched.topk_hyps[..., :width], alone.topk_hyps)
    assert not batched.topk_hyps[..., width:].any()
    assert torch.equal(batched.topk_lengths, alone.topk_lengths)
    assert batched.dec_out[0].shape == alone.dec_out[0].shape
    torch.testing.assert_close(batched.dec_out[0], alone.dec_out[0], rtol=0, atol=ATOL)
    torch.testing.assert_close(batched.topk_scores, alone.topk_scores, rtol=0, atol=ATOL)
    torch.testing.assert_close(batched.hyp_log_probs[0], alone.hyp_log_probs[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize("scorer,cache", ARITHMETIC)
@pytest.mark.parametrize("ratio", [1.0, 0.3])
def test_padded_batch_searches_each_utterance_as_alone(tiny_asr, encodings, scorer, cache, ratio):
    searcher = tiny_asr.searcher
    old = (searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio)
    searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio = scorer, cache, ratio
    try:
        alone = [searcher.search(e.unsqueeze(0).to(DEVICE)) for e in encodings]
        batch, lens = _pad(encodings)
        result = searcher.search(batch, enc_lens=lens)
    finally:
        searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio = old
    steps = [a.n_steps[0] for a in alone]
    assert min(steps) * 5 < max(steps)  # one search ends much earlier than the longest
    for b, one in enumerate(alone):
        _assert_same(result.select(b), one)


def test_search_of_one_utterance_is_unchanged_by_enc_lens(tiny_asr, encodings):
    enc = encodings[1].unsqueeze(0).to(DEVICE)
    plain, exact = (
        tiny_asr.searcher.search(enc),
        tiny_asr.searcher.search(enc, enc_lens=[enc.shape[1]]),
    )
    _assert_same(exact, plain)
    torch.testing.assert_close(exact.dec_out[0], plain.dec_out[0], rtol=0, atol=0)


def test_search_many_sorts_and_chunks_but_returns_in_order(tiny_asr, encodings):
    alone = [tiny_asr.search(e) for e in encodings]
    for batch_size in (1, 3, 8):
        results = tiny_asr.search_many(encodings, batch_size=batch_size)
        for one, res in zip(alone, results, strict=True):
            _assert_same(res, one)


def test_represent_batch_of_unequal_lengths_equals_represent(tiny_asr):
    wavs = [_wav("in4_B"), _wav("in5_C"), _wav("in5_C")[:4800], _wav("in1_A_left_proc")]
    batched = tiny_asr.represent_batch(wavs, max_batch=4)
    for wav, rep in zip(wavs, batched, strict=True):
        alone = tiny_asr.represent(wav)
        assert rep.hyp == alone.hyp
        torch.testing.assert_close(rep.enc, alone.enc, rtol=0, atol=2e-6)  # the encoder runs per length
        torch.testing.assert_close(rep.dec, alone.dec, rtol=0, atol=ATOL)
        assert rep.score == pytest.approx(alone.score, abs=ATOL)


def test_enc_lens_are_validated(tiny_asr, encodings):
    batch, lens = _pad(encodings[:2])
    with pytest.raises(ValueError, match=r"enc_lens must be 2 lengths in \[1, 76\] frames, got \[77, 53\]"):
        tiny_asr.searcher.search(batch, enc_lens=lens + torch.tensor([1, 0]))


@pytest.mark.parametrize("setting", [{"ctc_scorer": "partial"}, {"decoder_cache": "sometimes"}])
def test_arithmetic_settings_are_validated(tiny_asr, setting):
    modules = [tiny_asr.transformer, tiny_asr.hparams["seq_lin"], tiny_asr.hparams["ctc_lin"]]
    with pytest.raises(ValueError, match=next(iter(setting))):
        bs.TransformerBeamSearch(modules, 1, 2, 0, 0.0, 1.0, 4, 0.4, **setting)


def test_auto_arithmetic_is_the_table_of_the_device(tiny_asr):
    modules = [tiny_asr.transformer, tiny_asr.hparams["seq_lin"], tiny_asr.hparams["ctc_lin"]]
    auto = bs.TransformerBeamSearch(modules, 1, 2, 0, 0.0, 1.0, 4, 0.4)
    for device in ("cpu", "cuda", "cuda:1"):
        assert auto.arithmetic(device) == bs.FASTEST_ARITHMETIC[torch.device(device).type]
    fixed = bs.TransformerBeamSearch(
        modules, 1, 2, 0, 0.0, 1.0, 4, 0.4, ctc_scorer="reference", decoder_cache=False
    )
    assert fixed.arithmetic("cuda") == ("reference", False)


def test_fast_scorer_solves_padded_batches_in_closed_form(monkeypatch):
    # the exact search's padded batches must not fall back to the frame loop (the slow path)
    gen = torch.Generator().manual_seed(1)
    log_probs = torch.log_softmax(3 * torch.randn(2, 23, 30, generator=gen), dim=-1)
    scorer = bs.CTCPrefixScorerFast(log_probs, torch.tensor([23, 11]), 4, 0, 2, -1e20)

    def no_loop(*args):
        raise AssertionError("frame loop used")

    monkeypatch.setattr(scorer, "_recurse_loop", no_loop)
    prefix = torch.empty(8, 0, dtype=torch.long)
    _, state = scorer.forward_step(prefix, None)
    scorer.permute_mem(state, torch.tensor([[3, 5, 7, 9], [4, 6, 8, 10]]))
