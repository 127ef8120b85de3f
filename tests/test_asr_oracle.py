"""Agreement of e032.asr with the ORIGINAL E032 code (SpeechBrain 0.5.9) on the tiny oracle checkpoint.

Fixtures in ``tests/data/asr_reference/`` (copied from ``../shared/asr_reference/``, README_oracle.md
there): a tiny checkpoint written by SpeechBrain 0.5.9's Checkpointer, six inputs (the ``wav`` key of
each npz) and what the original recipe code computed for them. Tolerances are those the oracle README
suggests: fbank 1e-4 dB; other tensors and scores 1e-5; hypotheses, step counts and decoder input
tokens exactly. When ``../shared/asr_reference`` exists, the same checks also run on its copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from e032.asr import beam_search as bs
from e032.asr import checkpoint as ck
from e032.asr.beam_search import TransformerBeamSearch
from e032.asr.model import load_asr, load_hparams
from tests.tiny_asr import TINY_ASR_SIZES

torch.set_num_threads(1)


REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "asr_reference"
SHARED = (REPO / ".." / "shared" / "asr_reference").resolve()
TINY = {**TINY_ASR_SIZES}
INPUTS = ["in0_A_left_ref", "in1_A_left_proc", "in2_A_right_ref", "in3_A_right_proc", "in4_B", "in5_C"]
ATOL = {"fbank": 1e-4, "feats_norm": 1e-5, "cnn_out": 1e-5, "enc_out": 1e-5}


def _oracle(name: str, sub: str = "") -> dict:
    return dict(np.load(DATA / "oracle" / sub / f"{name}.npz"))


@pytest.fixture(scope="module")
def tiny_asr():
    return load_asr(DATA / "tiny_ckpt" / "save", overrides=TINY, device="cpu")


@pytest.fixture(scope="module")
def encoder_outputs(tiny_asr):
    return {name: tiny_asr.stages(_oracle(name)["wav"]) for name in INPUTS}


# ----------------------------------------------------------------------------------- front-end
@pytest.mark.parametrize("name", INPUTS)
def test_front_end_matches_oracle(encoder_outputs, name):
    oracle = _oracle(name)
    for stage, atol in ATOL.items():
        ours = encoder_outputs[name][stage].numpy()
        assert ours.shape == oracle[stage].shape, stage
        np.testing.assert_allclose(ours, oracle[stage], rtol=0, atol=atol, err_msg=stage)


def test_batched_encoder_equals_one_at_a_time(tiny_asr):
    # the two ears of signal A have equal lengths (in0/in2, in1/in3): batched exactly as alone
    wavs = [_oracle(n)["wav"] for n in INPUTS]
    batched = tiny_asr.encode_batch(wavs)
    # 2e-6: float32 kernels block a batch of 4 differently from a batch of 1 (1.2e-6 on an AMD EPYC
    # development VM); the oracle's own bound is 1e-5
    for name, enc in zip(INPUTS, batched, strict=True):
        alone = tiny_asr.encode(_oracle(name)["wav"])
        np.testing.assert_allclose(enc.cpu().numpy(), alone.numpy(), rtol=0, atol=2e-6)
        np.testing.assert_allclose(enc.cpu().numpy(), _oracle(name)["enc_out"], rtol=0, atol=1e-5)
    # a 40 dB quieter ear in the same batch: the Fbank's top-80-dB clamp must stay per utterance
    loud, quiet = wavs[0], wavs[2] * 0.01
    for enc, wav in zip(tiny_asr.encode_batch([loud, quiet]), (loud, quiet), strict=True):
        np.testing.assert_allclose(enc.cpu().numpy(), tiny_asr.encode(wav).numpy(), rtol=0, atol=2e-6)


# ----------------------------------------------------------------------------------- beam search
def _check_search(result, oracle):
    assert result.hyps[0] == oracle["hyp"].tolist()
    assert result.n_steps[0] == int(oracle["n_decode_steps"])
    assert result.dec_input_tokens[0].tolist() == oracle["dec_input_tokens"].tolist()
    assert result.dec_out[0].shape == oracle["dec_out"].shape
    np.testing.assert_allclose(result.dec_out[0].numpy(), oracle["dec_out"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.topk_scores[0].numpy(), oracle["topk_scores"], rtol=0, atol=1e-5)
    probs = torch.exp(result.hyp_log_probs[0]).numpy()
    np.testing.assert_allclose(probs, oracle["hyp_token_probs"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("scorer,cache", [("fast", True), ("reference", False)])
@pytest.mark.parametrize("sub,ratio", [("", 1.0), ("extra_max_ratio", 0.3)])
def test_beam_search_matches_oracle(tiny_asr, encoder_outputs, scorer, cache, sub, ratio):
    # ("reference", False) is the original's arithmetic: full CTC recursion, every prefix re-decoded
    searcher = tiny_asr.searcher
    old = (searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio)
    searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio = scorer, cache, ratio
    try:
        names = INPUTS if scorer == "fast" else ["in1_A_left_proc", "in4_B"]  # the original is slower
        for name in names:
            oracle = _oracle(name, sub)
            result = tiny_asr.search(encoder_outputs[name]["enc_out"])
            _check_search(result, oracle)
            if sub:
                assert result.max_decode_steps == int(oracle["max_decode_steps"]) == result.n_steps[0]
    finally:
        searcher.ctc_scorer, searcher.decoder_cache, searcher.max_decode_ratio = old


@pytest.mark.parametrize("normalise", [True, False])
def test_scores_are_sums_or_means_of_the_fused_step_log_probs(tiny_asr, encoder_outputs, normalise):
    modules = [tiny_asr.transformer, tiny_asr.hparams["seq_lin"], tiny_asr.hparams["ctc_lin"]]
    searcher = TransformerBeamSearch(modules, 1, 2, 0, 0.0, 1.0, 10, 0.4, length_normalization=normalise)
    result = searcher.search(encoder_outputs["in4_B"]["enc_out"].unsqueeze(0))
    steps = result.hyp_log_probs[0]
    assert result.topk_hyps[0, 0, len(steps) - 1] == 2  # the best hypothesis ended with EOS
    expected = steps.mean() if normalise else steps.sum()
    # float32 sums of the step log-probs in another order than the search's: 1e-6 relative (1.14e-5
    # absolute seen on an AMD EPYC development VM)
    assert float(result.topk_scores[0, 0]) == pytest.approx(float(expected), rel=1e-6, abs=1e-5)
    assert torch.all(result.topk_scores[0, :-1] >= result.topk_scores[0, 1:])


def test_represent_api(tiny_asr):
    oracle = _oracle("in4_B")
    rep = tiny_asr.represent(oracle["wav"])
    assert rep.hyp == oracle["hyp"].tolist()
    assert rep.score == pytest.approx(float(oracle["topk_scores"][0]), abs=1e-5)
    np.testing.assert_allclose(rep.enc.numpy(), oracle["enc_out"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(rep.dec.numpy(), oracle["dec_out"], rtol=0, atol=1e-5)


def test_best_hyp_variant_is_teacher_forced_best_hypothesis(tiny_asr):
    oracle = _oracle("in4_B")
    tiny_asr.decoder_representation = "best_hyp"
    try:
        rep = tiny_asr.represent(oracle["wav"])
    finally:
        tiny_asr.decoder_representation = "last_step_slot0"
    assert rep.dec.shape == (len(rep.hyp) + 1, 32)
    tokens = torch.tensor([[1, *rep.hyp]])
    expected, _ = tiny_asr.transformer.decode(tokens, rep.enc.unsqueeze(0))
    np.testing.assert_allclose(rep.dec.numpy(), expected[0].numpy(), rtol=0, atol=1e-6)


def test_batch_of_two_searches_like_one_at_a_time(tiny_asr, encoder_outputs):
    # equal lengths (no padding), different stopping steps (36 and 37): each utterance's result,
    # decoder representation included, is the one its search alone gives
    names = ("in1_A_left_proc", "in3_A_right_proc")
    result = tiny_asr.searcher.search(torch.stack([encoder_outputs[n]["enc_out"] for n in names]))
    for b, name in enumerate(names):
        _check_search(result.select(b), _oracle(name))
    hyps, scores = tiny_asr.searcher(torch.stack([encoder_outputs[n]["enc_out"] for n in names]))
    assert hyps == result.hyps and torch.equal(scores, result.topk_scores)  # SpeechBrain-0.5-style call
    reps = tiny_asr.represent_batch([_oracle(n)["wav"] for n in names])
    for rep, name in zip(reps, names, strict=True):
        assert rep.hyp == _oracle(name)["hyp"].tolist()
        np.testing.assert_allclose(rep.dec.numpy(), _oracle(name)["dec_out"], rtol=0, atol=1e-5)


def test_searcher_rejects_bad_settings(tiny_asr):
    modules = [tiny_asr.transformer, tiny_asr.hparams["seq_lin"], tiny_asr.hparams["ctc_lin"]]
    with pytest.raises(ValueError, match="distinct"):
        TransformerBeamSearch(modules, 0, 2, 0, 0.0, 1.0, 4, 0.4)
    with pytest.raises(ValueError, match="ctc_scorer"):
        TransformerBeamSearch(modules, 1, 2, 0, 0.0, 1.0, 4, 0.4, ctc_scorer="partial")


# ----------------------------------------------------------------------------------- checkpoints
def test_full_size_model_matches_original_keys_and_shapes():
    manifest = json.loads((DATA / "model_keys_full.json").read_text())
    with torch.device("meta"):
        hparams = load_hparams(REPO / "transformer_cpc1.yaml")
    state = hparams["model"].state_dict()
    expected = ck.rename_legacy_keys({e["key"]: e["shape"] for e in manifest["state_dict"]})
    assert list(state) == list(expected)
    assert {k: list(v.shape) for k, v in state.items()} == expected
    n_params = sum(p.numel() for p in hparams["model"].parameters())
    assert n_params == manifest["n_parameters"] == 161_593_104


def test_renames_cover_the_legacy_decoder_keys():
    legacy = {"1.decoder.layers.0.mutihead_attn.att.in_proj_weight": torch.zeros(1)}
    assert list(ck.rename_legacy_keys(legacy)) == ["1.decoder.layers.0.multihead_attn.att.in_proj_weight"]


def test_missing_folder_and_empty_save_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_asr(tmp_path / "nope", overrides=TINY, device="cpu")
    (tmp_path / "save").mkdir()
    with pytest.raises(FileNotFoundError, match="CKPT"):
        load_asr(tmp_path, overrides=TINY, device="cpu")


def test_shape_mismatch_names_the_key():
    hparams = load_hparams(REPO / "transformer_cpc1.yaml", {**TINY, "d_ffn": 48})
    with pytest.raises(ValueError, match=r"shape mismatch for '1\.encoder\.layers\.0\.pos_ffn"):
        ck.load_save_folder(hparams["model"], hparams["normalize"], DATA / "tiny_ckpt" / "save")


def _copy_ckpt(dst: Path, name: str, unixtime: float, scale: float | None = None) -> Path:
    src = next((DATA / "tiny_ckpt" / "save").glob("CKPT+*"))
    out = dst / name
    shutil.copytree(src, out)
    meta = (out / "CKPT.yaml").read_text().splitlines()
    (out / "CKPT.yaml").write_text(
        "\n".join(f"unixtime: {unixtime}" if line.startswith("unixtime") else line for line in meta) + "\n"
    )
    if scale is not None:
        state = torch.load(out / "model.ckpt", weights_only=True)
        torch.save(
            {k: v * scale if v.is_floating_point() else v for k, v in state.items()}, out / "model.ckpt"
        )
    return out


def test_averaging_and_recovery_of_a_save_folder(tmp_path):
    save = tmp_path / "save"
    _copy_ckpt(save, "CKPT+old", 1.0, scale=3.0)
    newest = _copy_ckpt(save, "CKPT+new", 2.0)
    (newest / "counter.ckpt").write_text("7")
    hparams = load_hparams(REPO / "transformer_cpc1.yaml", TINY)
    loaded = ck.load_save_folder(hparams["model"], hparams["normalize"], tmp_path, average=True)
    assert loaded.recovered == newest and loaded.epoch == 7 and len(loaded.averaged) == 2
    original = torch.load(newest / "model.ckpt", weights_only=True)
    key = "1.encoder.layers.0.pos_ffn.ffn.0.weight"
    torch.testing.assert_close(hparams["model"].state_dict()[key], 2.0 * original[key])
    latest_only = ck.load_pretrained_into(hparams, save_folder=save)
    assert latest_only.averaged == [newest]
    torch.testing.assert_close(hparams["model"].state_dict()[key], original[key], rtol=0, atol=0)


def test_normalizer_of_the_old_layout_loads_exactly():
    path = next((DATA / "tiny_ckpt" / "save").glob("CKPT+*")) / "normalizer.ckpt"
    raw = torch.load(path, weights_only=True)
    assert {"spk_dict_mean", "spk_dict_std", "spk_dict_count"} <= set(raw)  # SpeechBrain 0.5.x layout
    hparams = load_hparams(REPO / "transformer_cpc1.yaml", TINY)
    ck.load_normalizer_stats(hparams["normalize"], path)
    assert hparams["normalize"].count == raw["count"] == 9
    assert torch.equal(hparams["normalize"].glob_mean, raw["glob_mean"])


def test_hf_release_layout(tmp_path):
    src = next((DATA / "tiny_ckpt" / "save").glob("CKPT+*"))
    shutil.copy(src / "model.ckpt", tmp_path / "asr.ckpt")
    with pytest.raises(FileNotFoundError, match="normalizer"):
        load_asr(tmp_path, overrides=TINY, device="cpu")
    shutil.copy(src / "normalizer.ckpt", tmp_path / "normalizer.ckpt")
    asr = load_asr(tmp_path, overrides=TINY, device="cpu")
    assert asr.checkpoint.kind == "hf"
    oracle = _oracle("in4_B")
    np.testing.assert_allclose(asr.encode(oracle["wav"]).numpy(), oracle["enc_out"], rtol=0, atol=1e-5)


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "x.ckpt"
    torch.save({"obj": ck.CheckpointDir(path=tmp_path, meta={})}, path)
    with pytest.raises(ValueError, match="allow_pickle"):
        ck.torch_load(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/asr_reference not present")
def test_shared_oracle_copy_is_identical():
    # the bundled copy must be the oracle's data (guards against a stale copy)
    for name in INPUTS:
        ours, theirs = _oracle(name), dict(np.load(SHARED / "oracle" / f"{name}.npz"))
        assert set(ours) == set(theirs)
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])


@pytest.mark.parametrize("lengths", [(23, 23), (23, 15)])
def test_fast_ctc_scorer_equals_reference_scorer(lengths):
    # random CTC posteriors, 2 utterances (the second one padded in the second case), 5 steps of
    # random (but valid) candidate choices: the fast scorer's increments and states follow the original's
    gen = torch.Generator().manual_seed(0)
    n_frames, vocab, beam = max(lengths), 30, 4
    log_probs = torch.log_softmax(3 * torch.randn(2, n_frames, vocab, generator=gen), dim=-1)
    enc_lens = torch.tensor(lengths)
    scorers = [
        cls(log_probs, enc_lens, beam, 0, 2, -1e20)
        for cls in (bs.CTCPrefixScorerFast, bs.CTCPrefixScorerReference)
    ]
    states = [None, None]
    prefix = torch.empty(2 * beam, 0, dtype=torch.long)
    for _ in range(5):
        outs = [s.forward_step(prefix, st) for s, st in zip(scorers, states, strict=True)]
        fast, ref = outs[0][0], outs[1][0]
        usable = ref > -1e10  # candidates the search can pick (blank and impossible ones are ~ -1e20)
        assert torch.equal(usable, fast > -1e10)
        torch.testing.assert_close(fast[usable], ref[usable], rtol=1e-6, atol=1e-5)
        candidates = torch.stack([torch.randperm(beam * vocab, generator=gen)[:beam] for _ in range(2)])
        candidates = torch.where(candidates % vocab == 0, candidates + 3, candidates)  # never blank
        states = [s.permute_mem(out[1], candidates) for s, out in zip(scorers, outs, strict=True)]
        r_fast, r_ref = states[0][0], states[1][0]
        finite = r_ref > -1e10
        torch.testing.assert_close(r_fast[finite], r_ref[finite], rtol=1e-6, atol=1e-5)
        flat = (candidates + torch.tensor([[0], [beam]]) * vocab).view(-1)
        prefix = torch.cat([prefix[flat // vocab], (flat % vocab).unsqueeze(1)], dim=1)


def test_similarities_from_our_representations_match_the_original(tiny_asr):
    # end to end: waveforms -> our encoder/decoder representations -> our similarities
    from e032.similarity import decoder_pairings, decoder_similarity, encoder_similarity

    signals = json.loads((DATA / "oracle" / "similarities.json").read_text())["signals"]
    keys = ("left_proc", "right_proc", "left_ref", "right_ref")
    reps = {name: tiny_asr.represent(_oracle(name)["wav"]) for name in INPUTS}
    for signal, entry in signals.items():
        four = [reps[entry[k]] for k in keys]
        assert encoder_similarity(*(r.enc for r in four)) == pytest.approx(entry["enc_similarity"], abs=1e-6)
        assert decoder_similarity(*(r.dec for r in four)) == pytest.approx(entry["dec_similarity"], abs=1e-6)
        for name, result in decoder_pairings(*(r.dec for r in four)).items():
            assert [list(p) for p in result["path"]] == entry["dec_pairings"][name]["dtw_path"], (
                signal,
                name,
            )


def test_speechbrain_1x_save_folder_round_trip(tiny_asr, tmp_path):
    # a save/ folder written by SpeechBrain 1.1.2's own Checkpointer (what train_asr.py produces)
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.epoch_loop import EpochCounter

    counter = EpochCounter(limit=20)
    counter.current = 12
    recoverables = {"model": tiny_asr.hparams["model"], "normalizer": tiny_asr.normalize, "counter": counter}
    Checkpointer(tmp_path / "save", recoverables).save_checkpoint(meta={"ACC": 0.5})
    assert set(
        torch.load(next((tmp_path / "save").glob("CKPT+*")) / "normalizer.ckpt", weights_only=True)
    ) == {"count", "glob_mean", "glob_std"}  # the 1.x layout
    reloaded = load_asr(tmp_path, overrides=TINY, device="cpu")
    assert reloaded.checkpoint.epoch == 12
    wav = _oracle("in4_B")["wav"]
    np.testing.assert_array_equal(reloaded.encode(wav).numpy(), tiny_asr.encode(wav).numpy())
