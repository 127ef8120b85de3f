"""Tests of the shared helpers: atomic I/O, validated reads, track resolution, thread settings."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from e032.io import atomic_path, read_json, read_wav, write_json_atomic, write_wav_atomic
from e032.tracks import resolve_track
from msbg.parallel import default_num_workers, pin_threads


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    # the old content survives, and no temporary file is left behind
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,,}')
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON.*line 1"):
        read_json(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json", what="listener file")


def test_wav_roundtrip_and_format_checks(tmp_path):
    signal = np.linspace(-1.5, 1.5, 200).reshape(100, 2)
    write_wav_atomic(tmp_path / "f.wav", signal, 44100)  # float keeps values beyond +-1
    np.testing.assert_allclose(read_wav(tmp_path / "f.wav", 44100, 2), signal, atol=1e-7)
    write_wav_atomic(tmp_path / "p.wav", signal, 44100, subtype="PCM_16")  # 16-bit clips
    assert np.abs(sf.read(tmp_path / "p.wav")[0]).max() <= 1.0
    with pytest.raises(ValueError, match=r"f\.wav: sample rate is 44100 Hz, expected 16000"):
        read_wav(tmp_path / "f.wav", sample_rate=16000)
    with pytest.raises(ValueError, match=r"has 2 channel\(s\), expected 1"):
        read_wav(tmp_path / "f.wav", n_channels=1)
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_wav(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="cannot read audio file"):
        read_wav(tmp_path / "junk.wav")


def _cfg(root, track):
    return OmegaConf.create(
        {
            "cpc1_track": track,
            "path": {
                "root": str(root),
                "cpc1_train_data": f"{root}/clarity_CPC1_data_train",
                "cpc1_test_data": f"{root}/clarity_CPC1_data_test",
                "exp_folder": f"{root}/e032",
                "test_labels": f"{root}/test_listener_responses",
            },
        }
    )


def test_tracks_resolve_names_and_paths(tmp_path):
    closed, open_ = resolve_track(_cfg(tmp_path, "closed")), resolve_track(_cfg(tmp_path, "open"))
    assert closed.responses_json("train").name == "CPC1.train.json"
    assert open_.responses_json("test").name == "CPC1.test_indep.json"
    assert open_.ha_output_dir("train").parts[-2:] == ("HA_outputs", "train_indep")
    assert closed.listeners_json("test").name == "listeners.CPC1_all.json"
    assert open_.listeners_json("train").name == "listeners.CPC1_train.json"
    assert open_.asr_data_dir.name == "cpc1_asr_data_indep"
    assert open_.split_list("dev").name == "scene_dev_list_indep.json"
    # every output of the two tracks differs, so both can share one exp_folder
    outputs = lambda t: {  # noqa: E731
        t.split_list("train"),
        t.split_list("dev"),
        t.msbg_dir("train"),
        t.msbg_dir("test"),
        t.asr_data_dir,
        t.results_json,
        *(t.similarity_json(p, r) for p in ("dev", "test") for r in ("enc", "dec")),
    }
    assert not outputs(closed) & outputs(open_)
    with pytest.raises(ValueError, match="cpc1_track must be 'closed' or 'open', got 'opne'"):
        resolve_track(_cfg(tmp_path, "opne"))


def test_thread_helpers(monkeypatch):
    pin_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert default_num_workers(3) == 3
    assert default_num_workers(0) >= 1
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        default_num_workers(-2)
