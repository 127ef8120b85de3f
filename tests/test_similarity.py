"""Tests of e032/similarity.py: hand-made sequences with known values, and the original's similarities.

The oracle (``tests/data/asr_reference/oracle/similarities.json``) holds what the original
``infer.feat2similarity`` computed from the npz representations of three synthetic signals, with the
fastdtw path of every ear pairing.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastdtw.fastdtw import dtw as fastdtw_full

from e032 import similarity as sim

torch.set_num_threads(1)
DATA = Path(__file__).resolve().parent / "data" / "asr_reference" / "oracle"
KEYS = ("left_proc", "right_proc", "left_ref", "right_ref")


def test_doctests():
    assert doctest.testmod(sim).failed == 0


def test_identical_sequences_give_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 16)).astype(np.float32)
    assert sim.encoder_similarity(x, x, x, x) == pytest.approx(1.0, abs=1e-6)
    assert sim.decoder_similarity(x, x, x, x) == pytest.approx(1.0, abs=1e-6)
    assert sim.decoder_similarity(x, x, x, x, method="exact") == pytest.approx(1.0, abs=1e-6)


def test_encoder_similarity_known_value_with_padding_and_max_over_pairings():
    e1, e2 = np.eye(2, dtype=np.float32)
    left_ref = np.stack([e1, e1, e1, e1])  # 4 frames
    right_ref = np.stack([e2, e2, e2, e2])
    left_proc = np.stack([e2, e2])  # 2 frames: matches the right reference; padded frames give 0
    right_proc = np.stack([-e1, -e1, -e1])  # opposite of the left reference
    # per frame, max over pairings: 1, 1, max(0 (pad), -1, 0, 0) = 0, 0 (all padded or orthogonal)
    assert sim.encoder_similarity(left_proc, right_proc, left_ref, right_ref) == pytest.approx(0.5)


def test_decoder_similarity_known_value():
    e1, e2 = np.eye(2, dtype=np.float32)
    near_e1 = np.array([2.0, 1.0], dtype=np.float32) / np.sqrt(5)  # cos 2/sqrt(5) to e1, 1/sqrt(5) to e2
    ref = np.stack([e1, e2])
    proc = np.stack([e1, near_e1, e2])
    expected_path = [(0, 0), (0, 1), (1, 2)]  # the middle frame is aligned with e1 (the closer one)
    for method in ("fastdtw", "exact"):
        distance, path = sim.dtw_align(ref, proc, method=method)
        assert path == expected_path
        assert distance == pytest.approx(1 - 2 / np.sqrt(5), abs=1e-6)
    mean_cos = (1 + 2 / np.sqrt(5) + 1) / 3
    assert sim.path_mean_cosine(ref, proc, expected_path) == pytest.approx(mean_cos, abs=1e-6)
    ones = np.ones((2, 2), dtype=np.float32)  # cosine 1/sqrt(2) to e1 and e2, -1 to -ones
    assert sim.decoder_similarity(proc, ones, ref, -ones) == pytest.approx(mean_cos, abs=1e-6)
    assert sim.decoder_similarity(ones, proc, -ones, ref) == pytest.approx(mean_cos, abs=1e-6)


def test_exact_dtw_equals_full_window_dtw_of_fastdtw_package():
    rng = np.random.default_rng(1)
    for n, m in ((5, 9), (12, 7), (20, 20)):
        ref = rng.standard_normal((n, 6))
        proc = rng.standard_normal((m, 6))
        ours = sim.exact_dtw(sim.cosine_distance_matrix(torch.tensor(ref), torch.tensor(proc)))
        theirs = fastdtw_full(ref, proc, dist=lambda a, b: 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert ours[1] == [tuple(p) for p in theirs[1]]
        assert ours[0] == pytest.approx(theirs[0], rel=1e-9)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="feature dimension"):
        sim.encoder_similarity(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="left_proc"):
        sim.encoder_similarity(np.ones(4), np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="method"):
        sim.dtw_align(np.ones((3, 4)), np.ones((3, 4)), method="slow")


@pytest.fixture(scope="module")
def oracle_signals():
    return json.loads((DATA / "similarities.json").read_text())["signals"]


def test_similarities_match_the_original(oracle_signals):
    for signal, entry in oracle_signals.items():
        enc = [np.load(DATA / f"{entry[k]}.npz")["enc_out"] for k in KEYS]
        dec = [np.load(DATA / f"{entry[k]}.npz")["dec_out"] for k in KEYS]
        assert sim.encoder_similarity(*enc) == pytest.approx(entry["enc_similarity"], abs=1e-6), signal
        assert sim.decoder_similarity(*dec) == pytest.approx(entry["dec_similarity"], abs=1e-6), signal
        for name, result in sim.decoder_pairings(*dec).items():
            expected = entry["dec_pairings"][name]
            assert [list(p) for p in result["path"]] == expected["dtw_path"], (signal, name)
            assert result["mean_cos"] == pytest.approx(expected["dec_dtw_mean_cos"], abs=1e-6)
            assert result["distance"] == pytest.approx(expected["dtw_distance"], abs=1e-9)


def test_exact_dtw_variant_is_close_on_the_oracle_signals(oracle_signals):
    for entry in oracle_signals.values():
        dec = [np.load(DATA / f"{entry[k]}.npz")["dec_out"] for k in KEYS]
        exact = sim.decoder_similarity(*dec, method="exact")
        # exact DTW minimises the same cost over a larger set of paths: similar, not identical
        assert abs(exact - entry["dec_similarity"]) < 0.02


def test_the_pure_python_fastdtw_is_used():
    # fastdtw's compiled extension (fastdtw._fastdtw), when installed, breaks cost ties differently
    assert sim._fastdtw_pure_python.__module__ == "fastdtw.fastdtw"
