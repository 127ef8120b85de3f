"""Tests of e032/asr/sb05.py: SpeechBrain 0.5.9 training arithmetic and its switches back to 1.1.2.

Each 0.5.9 rule is checked against the oracle's stored values or a direct computation of the rule, and
each 1.1.2 switch against SpeechBrain 1.1.2's own code, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR as SBTransformerASR
from speechbrain.nnet.losses import ctc_loss as sb_ctc_loss
from speechbrain.processing.features import InputNormalization as SBInputNormalization

from e032.asr.checkpoint import load_normalizer_stats
from e032.asr.sb05 import FloorFbank, InputNormalization, TransformerASR, ctc_loss

REPO = Path(__file__).resolve().parents[1]
ORACLE = REPO / "tests" / "data" / "asr_train_reference"
TINY_CKPT = next((REPO / "tests" / "data" / "train_asr" / "tiny_ckpt_05x" / "save").glob("CKPT+*"))


def oracle_wavs() -> torch.Tensor:
    data = np.load(ORACLE / "batch.npz")
    return torch.from_numpy(data["wav_int16"].astype(np.float32) / np.float32(32768))


# ---------------------------------------------------------------------------------- (a) Fbank floor
def test_batch_floor_reproduces_the_oracle_fbank_and_utterance_floor_is_speechbrain_1():
    fbank = Fbank(sample_rate=16000, n_fft=400, n_mels=80)
    wavs = oracle_wavs()
    expected = np.load(ORACLE / "fbank.npz")["fbank"]
    np.testing.assert_array_equal(FloorFbank(fbank, "batch")(wavs).numpy(), expected)
    per_utterance = FloorFbank(fbank, "utterance")(wavs)
    torch.testing.assert_close(per_utterance, fbank(wavs), rtol=0, atol=0)
    # the -30 dB utterance keeps 30-42 dB more range under the batch floor (oracle README §7)
    assert np.abs(per_utterance.numpy() - expected).max() == pytest.approx(42.25, abs=0.01)
    # one utterance: both floors agree (inference runs one utterance at a time)
    torch.testing.assert_close(FloorFbank(fbank, "batch")(wavs[:1]), fbank(wavs[:1]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="floor"):
        FloorFbank(fbank, "global")


# ---------------------------------------------------------------------------------- (b) memory mask
def test_decoder_memory_mask_switch():
    sizes = dict(
        tgt_vocab=20,
        input_size=16,
        d_model=16,
        nhead=2,
        num_encoder_layers=1,
        num_decoder_layers=1,
        d_ffn=32,
        dropout=0.0,
        causal=False,
    )
    torch.manual_seed(0)
    reference = SBTransformerASR(**sizes).eval()
    ours = {flag: TransformerASR(**sizes, decoder_memory_mask=flag).eval() for flag in (True, False)}
    for model in ours.values():
        model.load_state_dict(reference.state_dict())
    src, tgt = torch.randn(2, 12, 16), torch.randint(3, 20, (2, 5))
    padded = torch.tensor([1.0, 0.5])
    with torch.no_grad():
        enc_ref, dec_ref = reference(src, tgt, padded)
        enc_masked, dec_masked = ours[True](src, tgt, padded)
        enc_free, dec_free = ours[False](src, tgt, padded)
        _, dec_full = ours[False](src, tgt, torch.ones(2))
        _, dec_full_ref = reference(src, tgt, torch.ones(2))
    torch.testing.assert_close(dec_masked, dec_ref, rtol=0, atol=0)  # True = SpeechBrain 1.1.2
    torch.testing.assert_close(enc_free, enc_ref, rtol=0, atol=0)  # the encoder is not affected
    torch.testing.assert_close(dec_free[0], dec_ref[0], rtol=0, atol=1e-6)  # no padding in utterance 0
    assert (dec_free[1] - dec_ref[1]).abs().max() > 1e-3  # utterance 1 now attends to padding frames
    torch.testing.assert_close(dec_full, dec_full_ref, rtol=0, atol=1e-6)
    assert not ours[False].decoder._forward_pre_hooks  # the hook lives only during forward


# ---------------------------------------------------------------------------------- (c) CTC lengths
def test_ctc_truncates_lengths_like_speechbrain_05_and_rounds_like_1():
    torch.manual_seed(1)
    log_probs = torch.randn(3, 43, 100).log_softmax(-1)
    targets = torch.randint(3, 100, (3, 23))
    wav_lens = torch.tensor([1.0, 0.7352941, 0.5882353])  # the oracle batch: 31.62 and 25.29 frames
    token_lens = torch.tensor([23, 7, 13], dtype=torch.float32) / 23  # 7/23*23 = 6.9999995 in float32
    assert float(token_lens[1] * 23) < 7
    kwargs = dict(blank_index=0, reduction="batchmean")
    rounded = ctc_loss(log_probs, targets, wav_lens, token_lens, length_rule="round", **kwargs)
    assert torch.equal(rounded, sb_ctc_loss(log_probs, targets, wav_lens, token_lens, **kwargs))
    truncated = ctc_loss(log_probs, targets, wav_lens, token_lens, length_rule="truncate", **kwargs)
    expected = (
        torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            targets,
            torch.tensor([43, 31, 25]),
            torch.tensor([23, 6, 13]),
            0,
            zero_infinity=True,
            reduction="sum",
        )
        / 3
    )
    assert torch.equal(truncated, expected)
    with pytest.raises(ValueError, match="length_rule"):
        ctc_loss(log_probs, targets, wav_lens, token_lens, length_rule="floor", **kwargs)


# ---------------------------------------------------------------------------------- (d) normaliser
def sb05_update(glob_mean, glob_std, count, x, rel_lens):
    """0.5.9's rule written out in float64 numpy (oracle README §5.2)."""
    n = [int(np.round(r * x.shape[1])) for r in rel_lens]
    mean = np.mean([x[i, : n[i]].mean(0) for i in range(len(x))], axis=0)
    std = np.mean([np.maximum(x[i, : n[i]].std(0, ddof=1), 1e-10) for i in range(len(x))], axis=0)
    w = 1 / (count + 1)
    return (1 - w) * glob_mean + w * mean, (1 - w) * glob_std + w * std


def test_normaliser_update_rule_of_speechbrain_05():
    norm = InputNormalization(norm_type="global", update_until_epoch=4)
    load_normalizer_stats(norm, TINY_CKPT / "normalizer.ckpt")  # a 0.5.x file, count = 9 calls
    assert norm.count == 9
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (3, 50, 80)).astype(np.float32)
    rel = np.array([1.0, 0.7, 0.5], dtype=np.float32)
    start = (norm.glob_mean.double().numpy(), norm.glob_std.double().numpy())
    mean, std = sb05_update(*start, 9, x.astype(np.float64), rel)
    norm.eval()  # 0.5.9 updates in every mode
    out = norm(torch.from_numpy(x), torch.from_numpy(rel), epoch=1)
    np.testing.assert_allclose(norm.glob_mean.numpy(), mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(norm.glob_std.numpy(), std, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), (x - mean) / std, rtol=0, atol=1e-4)
    assert norm.count == 10
    frozen = norm.glob_mean.clone()
    norm(torch.from_numpy(x), torch.from_numpy(rel), epoch=4)  # epoch >= update_until_epoch: frozen
    assert torch.equal(norm.glob_mean, frozen) and norm.count == 11  # but the call is counted
    fresh = InputNormalization(update_until_epoch=4)  # count 0: the first batch sets the statistics
    fresh(torch.from_numpy(x), torch.from_numpy(rel), epoch=10)
    first, _ = sb05_update(0.0, 0.0, 0, x.astype(np.float64), rel)
    np.testing.assert_allclose(fresh.glob_mean.numpy(), first, rtol=0, atol=1e-5)


def test_normaliser_sb1_rule_is_speechbrain_1_and_both_share_the_checkpoint_format(tmp_path):
    x = torch.randn(2, 30, 80) + 5
    rel = torch.tensor([1.0, 0.6])
    ours, theirs = InputNormalization(update_rule="sb1"), SBInputNormalization()
    for norm in (ours, theirs):
        load_normalizer_stats(norm, TINY_CKPT / "normalizer.ckpt")
        norm.train()
    torch.testing.assert_close(ours(x, rel, epoch=1), theirs(x, rel, epoch=1), rtol=0, atol=0)
    assert ours.count == theirs.count  # 1.1.2 counts frames
    ours._save(tmp_path / "normalizer.ckpt")  # the 1.x layout, readable by SpeechBrain's loader
    reloaded = SBInputNormalization()
    reloaded._load(tmp_path / "normalizer.ckpt")
    assert torch.equal(reloaded.glob_mean, ours.glob_mean) and reloaded.count == ours.count
    frozen_05, frozen_1 = InputNormalization(), SBInputNormalization()
    for norm in (frozen_05, frozen_1):  # frozen statistics normalise identically under both rules
        load_normalizer_stats(norm, TINY_CKPT / "normalizer.ckpt")
        norm.eval()
    torch.testing.assert_close(frozen_05(x, rel, epoch=120), frozen_1(x, rel, epoch=120), rtol=0, atol=0)
    with pytest.raises(ValueError, match="update_rule"):
        InputNormalization(update_rule="sb2")
    with pytest.raises(ValueError, match="global"):
        InputNormalization(norm_type="sentence")
