"""Tests of msbg.parallel (the pool runner) and of msbg standing alone, without e032."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from msbg.parallel import TextProgress, default_num_workers, pin_threads, run_pool

MSBG_DIR = Path(__file__).resolve().parents[1] / "msbg"


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("item 3 is bad")
    return x


_OFFSET = 0


def _set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def _add_offset(x: int) -> tuple[int, str | None]:
    return x + _OFFSET, os.environ.get("OPENBLAS_NUM_THREADS")


@pytest.mark.parametrize("num_workers", [1, 2])
def test_run_pool_results_in_order_with_callbacks(num_workers):
    seen, counts = [], []
    results = run_pool(
        _square,
        range(7),
        num_workers,
        on_result=lambda item, result: seen.append((item, result)),
        progress=lambda n_done, n_total: counts.append((n_done, n_total)),
        chunksize=2,
    )
    assert results == [x * x for x in range(7)]
    assert sorted(seen) == [(x, x * x) for x in range(7)]
    assert counts[0] == (0, 7) and counts[-1] == (7, 7)
    assert [n for n, _ in counts] == sorted(n for n, _ in counts)


def test_run_pool_initializer_runs_in_each_worker_with_one_thread():
    results = run_pool(_add_offset, [1, 2, 3], 2, initializer=_set_offset, initargs=(10,))
    assert [value for value, _ in results] == [11, 12, 13]
    assert {threads for _, threads in results} == {"1"}


def test_run_pool_in_process_calls_initializer_here():
    assert run_pool(_add_offset, [1], 0, initializer=_set_offset, initargs=(5,))[0][0] == 6
    _set_offset(0)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_run_pool_raises_the_job_error(num_workers):
    with pytest.raises(ValueError, match="item 3 is bad"):
        run_pool(_fail_on_three, range(6), num_workers)


def test_run_pool_rejects_bad_settings():
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        run_pool(_square, [1, 2], -1)
    with pytest.raises(ValueError, match="chunksize"):
        run_pool(_square, [1, 2], 1, chunksize=0)
    with pytest.raises(ValueError, match="start_method"):
        run_pool(_square, [1, 2], 1, start_method="fork")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_threads"):
        pin_threads(0)
    assert run_pool(_square, [], 0) == []
    assert default_num_workers(0) >= 1


def test_text_progress_writes_few_lines_to_a_log():
    stream = io.StringIO()
    progress = TextProgress("MSBG", stream)
    for n_done in range(501):
        progress(n_done, 500)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("MSBG: 50/500 files") and "left" in lines[0]
    assert lines[-1].startswith("MSBG: 500/500 files")


# --------------------------------------------------------------------------------------------
# msbg alone: a copy of the package, in an interpreter where e032 cannot be imported
# --------------------------------------------------------------------------------------------
# Run with ``python -I -S``: no site processing, so no .pth file (e.g. an editable install of this
# project) can make e032 importable; the packages come from site-packages added by hand, and
# spawned workers inherit both the flags and this sys.path.
STANDALONE_SCRIPT = """
import importlib.util, runpy, sys
sys.path[:0] = [{root!r}]
sys.path.extend({site!r})
assert importlib.util.find_spec("e032") is None, "e032 is importable: the test is void"
import numpy as np
import msbg
assert msbg.__file__.startswith({root!r}), msbg.__file__
from msbg import Audiogram, Ear, Listener
import msbg.batch, msbg.parallel, msbg.files  # noqa: E401

ear = Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
ear.set_audiogram(Audiogram(levels=np.array([20, 20, 30, 40, 50, 60, 70, 70])))
rng = np.random.default_rng(0)
out = ear.process(0.05 * rng.standard_normal(4410))[0]
assert out.shape == (4608,) and np.all(np.isfinite(out)), out.shape
sys.argv = ["msbg", "jobs.csv", "--num-workers", "2"]
try:
    runpy.run_module("msbg", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    assert stop.code == 0, stop.code
bad = [name for name in sys.modules if name == "e032" or name.startswith("e032.")]
assert not bad, bad
print("standalone ok")
"""


def test_msbg_runs_without_e032(tmp_path):
    import numpy as np
    import soundfile as sf

    root = tmp_path / "site"
    # The numba cache (__pycache__) comes along: the copy does not recompile the kernels.
    shutil.copytree(MSBG_DIR, root / "msbg")
    work = tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        sf.write(work / f"in{i}.wav", 0.05 * rng.standard_normal((8820, 2)), 44100)
    levels = ",".join(["10"] * 8 + ["40"] * 8)
    header = "input,output," + ",".join(
        f"{side}_{f}" for side in ("left", "right") for f in (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)
    )
    rows = [f"in{i}.wav,out/o{i}.wav,{levels}" for i in range(2)]
    (work / "jobs.csv").write_text("\n".join([header, *rows]) + "\n")
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    script = textwrap.dedent(STANDALONE_SCRIPT.format(root=str(root), site=site))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "standalone ok" in result.stdout
    assert "processed 2, skipped 0" in result.stdout
    assert sf.info(work / "out" / "o1.wav").channels == 2
    help_run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys, runpy; sys.path[:0] = [{str(root)!r}]; sys.path.extend({site!r});"
            "sys.argv = ['msbg', '--help']; runpy.run_module('msbg', run_name='__main__')",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert help_run.returncode == 0 and "--num-workers" in help_run.stdout, help_run.stderr
