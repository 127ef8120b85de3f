"""Tests of e032/inference.py's batching: the plan, the batch size, resuming across batches.

Uses the synthetic experiment of tests/test_infer.py (tiny oracle checkpoint, beam 8, 0.75-s files).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_infer import make_cfg, make_experiment

from e032 import inference
from e032.tracks import resolve_track

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_experiment(tmp_path_factory.mktemp("inference"))
    cfg = make_cfg(root)
    paths = resolve_track(cfg)
    return inference.asr_from_config(cfg, paths), inference.signal_table(paths, "dev")


def test_plan_keeps_scenes_whole_and_longest_first(setup):
    _, signals = setup  # scene S001: 2 signals (6 utterances), S002: 1 signal (4 utterances)
    scenes = {s.signal: s.reference_key for s in signals}
    for size in (1, 4, 6, 10, 64):
        batches = inference.plan_batches(signals, size)
        planned = [item.signal for batch in batches for scene in batch for item in scene]
        assert sorted(planned) == sorted(scenes)
        for batch in batches:
            for scene in batch:
                assert len({scenes[item.signal] for item in scene}) == 1
            assert len(batch) == 1 or sum(2 + 2 * len(scene) for scene in batch) <= size
    assert len(inference.plan_batches(signals, 10)) == 1
    assert len(inference.plan_batches(signals, 6)) == 2


@pytest.mark.parametrize("value", [0, -3, "large", True, 2.5])
def test_invalid_batch_size_is_refused(setup, value):
    asr, signals = setup
    with pytest.raises(ValueError, match="infer_batch_size must be 'auto' or an integer >= 1"):
        inference.resolve_batch_size(value, asr, signals)


def test_auto_batch_size_on_cpu(setup):
    asr, signals = setup
    assert inference.resolve_batch_size("auto", asr, signals) == inference.CPU_AUTO_BATCH_SIZE
    assert inference.resolve_batch_size("3", asr, signals) == 3
    assert inference.search_bytes_per_utterance(asr, 150) > 0


def test_kill_and_resume_across_batches_gives_identical_files(setup, tmp_path):
    asr, signals = setup
    whole = [tmp_path / "whole_enc.json", tmp_path / "whole_dec.json"]
    inference.compute_part(asr, signals, *whole, batch_size=2)
    files = [tmp_path / "enc.json", tmp_path / "dec.json"]
    done = []

    def killer(signal: str) -> None:
        done.append(signal)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        inference.compute_part(asr, signals, *files, flush_every=1, on_signal=killer, batch_size=2)
    resumed = []
    inference.compute_part(asr, signals, *files, flush_every=1, on_signal=resumed.append, batch_size=2)
    assert len(resumed) == len(signals) - 1
    for mine, theirs in zip(files, whole, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()
    # another batch size changes the float rounding at most
    other = [tmp_path / "b16_enc.json", tmp_path / "b16_dec.json"]
    inference.compute_part(asr, signals, *other, batch_size=16)
    for a, b in zip(whole, other, strict=True):
        x, y = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
        assert list(x) == list(y) and all(abs(x[s] - y[s]) <= 1e-6 for s in x)
