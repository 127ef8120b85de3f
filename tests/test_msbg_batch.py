"""Tests of the batch runner msbg.batch and the ``python -m msbg`` command line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from msbg import Audiogram, Ear, listen
from msbg.__main__ import main as cli_main
from msbg.batch import LEVEL_COLUMNS, MsbgJob, read_job_csv, run_jobs

LEFT = Audiogram([10, 15, 20, 30, 40, 50, 60, 60])
RIGHT = Audiogram([0] * 8)


def write_input(path: Path, seed: int, n_samples: int = 8820, channels: int = 2, rate: int = 44100):
    rng = np.random.default_rng(seed)
    signal = 0.05 * rng.standard_normal((n_samples, channels))
    sf.write(path, signal, rate, subtype="FLOAT")
    return signal


@pytest.fixture
def jobs(tmp_path):
    result = []
    for i in range(3):
        write_input(tmp_path / f"in{i}.wav", seed=i)
        result.append(MsbgJob(tmp_path / f"in{i}.wav", tmp_path / "out" / f"o{i}.wav", LEFT, RIGHT))
    return result


def test_job_is_picklable_and_frozen(jobs):
    job = pickle.loads(pickle.dumps(jobs[0]))
    assert job == jobs[0]
    with pytest.raises(AttributeError):
        job.output_wav = Path("x")


def test_outputs_match_listen_and_do_not_depend_on_workers(jobs, tmp_path):
    summary = run_jobs(jobs, num_workers=1, progress=False)
    assert (summary.n_processed, summary.n_skipped) == (3, 0)
    assert summary.wall_s > 0 and summary.cpu_s > 0
    first = [sf.read(job.output_wav, dtype="float32") for job in jobs]
    for (data, rate), job in zip(first, jobs, strict=True):
        info = sf.info(job.output_wav)
        assert (rate, info.channels, info.subtype) == (44100, 2, "FLOAT")
        signal, _ = sf.read(job.input_wav, dtype="float64")
        with threadpool_limits(1):  # as the runner: BLAS results may depend on the thread count
            expected = listen(Ear(), signal, LEFT, RIGHT).astype(np.float32)
        np.testing.assert_array_equal(data, expected)
    # Re-run with two worker processes into another folder: identical files.
    other = [MsbgJob(j.input_wav, tmp_path / "out2" / j.output_wav.name, LEFT, RIGHT) for j in jobs]
    assert run_jobs(other, num_workers=2, progress=False).n_processed == 3
    for job, (data, _) in zip(other, first, strict=True):
        np.testing.assert_array_equal(sf.read(job.output_wav, dtype="float32")[0], data)


def test_skip_existing(jobs):
    jobs[0].output_wav.parent.mkdir(parents=True)
    jobs[0].output_wav.write_bytes(b"already done")
    summary = run_jobs(jobs, num_workers=1, progress=False)
    assert (summary.n_processed, summary.n_skipped) == (2, 1)
    assert jobs[0].output_wav.read_bytes() == b"already done"
    summary = run_jobs(jobs, num_workers=1, progress=False, skip_existing=False)
    assert summary.n_processed == 3
    assert sf.info(jobs[0].output_wav).channels == 2


def test_missing_input_fails_before_any_work(jobs, tmp_path):
    missing = MsbgJob(tmp_path / "nope.wav", tmp_path / "out" / "nope.wav", LEFT, RIGHT)
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        run_jobs([*jobs, missing], num_workers=1, progress=False)
    assert not any(job.output_wav.exists() for job in jobs)


@pytest.mark.parametrize(("channels", "rate"), [(1, 44100), (2, 16000)])
def test_wrong_input_format(tmp_path, channels, rate):
    write_input(tmp_path / "bad.wav", 0, channels=channels, rate=rate)
    job = MsbgJob(tmp_path / "bad.wav", tmp_path / "o.wav", LEFT, RIGHT)
    with pytest.raises(ValueError, match=r"bad\.wav.*expects 2 channels at 44100 Hz"):
        run_jobs([job], num_workers=1, progress=False)


def test_duplicate_outputs_and_bad_params(jobs):
    clash = MsbgJob(jobs[1].input_wav, jobs[0].output_wav, LEFT, RIGHT)
    with pytest.raises(ValueError, match="same output"):
        run_jobs([jobs[0], clash], num_workers=1, progress=False)
    with pytest.raises(ValueError, match="src_pos"):
        run_jobs(jobs, ear_params={"src_pos": "xx"}, num_workers=1, progress=False)


def test_cli_with_levels_and_with_listeners(tmp_path, capsys):
    write_input(tmp_path / "a.wav", 0)
    header = ["input", "output", *LEVEL_COLUMNS]
    row = ["a.wav", "out/a.wav", *map(str, LEFT.levels), *map(str, RIGHT.levels)]
    (tmp_path / "jobs.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    assert cli_main([str(tmp_path / "jobs.csv"), "--num-workers", "1", "--quiet"]) == 0
    assert "processed 1, skipped 0" in capsys.readouterr().out
    by_levels = sf.read(tmp_path / "out/a.wav")[0]

    listeners = {
        "L9": {
            "name": "L9",
            "audiogram_cfs": [250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
            "audiogram_levels_l": LEFT.levels.tolist(),
            "audiogram_levels_r": RIGHT.levels.tolist(),
        }
    }
    (tmp_path / "listeners.json").write_text(json.dumps(listeners))
    (tmp_path / "jobs2.csv").write_text("input,output,listener\na.wav,out/b.wav,L9\n")
    args = [str(tmp_path / "jobs2.csv"), "--listeners", str(tmp_path / "listeners.json"), "--quiet"]
    assert cli_main([*args, "--num-workers", "1"]) == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "out/b.wav")[0], by_levels)

    (tmp_path / "jobs3.csv").write_text("input,output,listener\na.wav,out/c.wav,L404\n")
    args[0] = str(tmp_path / "jobs3.csv")
    assert cli_main(args) == 2
    assert "L404" in capsys.readouterr().err


def test_read_job_csv_errors(tmp_path):
    (tmp_path / "j.csv").write_text("input,output,left_250\na.wav,b.wav,10\n")
    with pytest.raises(ValueError, match="missing.*left_500"):
        read_job_csv(tmp_path / "j.csv")
    (tmp_path / "k.csv").write_text("input,output,listener\na.wav,b.wav,L1\n")
    with pytest.raises(ValueError, match="--listeners"):
        read_job_csv(tmp_path / "k.csv")
