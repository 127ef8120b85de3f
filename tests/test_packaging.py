"""The project as a package: a built wheel runs MSBG on its own, and the checkout has no stray
``sys.path`` patches or references to files a user does not have."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "msbg", "e032")
# the checkout's own files, minus tests (which may name the developers' oracle sets) and outputs
PROJECT_GLOBS = ("*.py", "*.md", "*.yaml", "*.sh", "Makefile", "NOTICE", "*.toml", "*.ini")

MSBG_SNIPPET = """
import sys
import numpy as np
import msbg
assert msbg.__file__.startswith(sys.argv[1]), msbg.__file__
assert "e032" not in sys.modules
t = np.arange(44100) / 44100
mono = 0.05 * np.sin(2 * np.pi * 1000 * t) * (1 + np.sin(2 * np.pi * 3 * t))
ear = msbg.Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
ear.set_audiogram(msbg.Audiogram(levels=[10, 15, 15, 20, 25, 30, 30, 35],
                                 frequencies=[250, 500, 1000, 2000, 3000, 4000, 6000, 8000]))
out = np.asarray(ear.process(mono), dtype=np.float64).ravel()
np.save(sys.argv[2], out)
"""


def project_files() -> list[Path]:
    """Tracked-looking files of the checkout outside tests/, outputs and caches."""
    skip = ("tests", ".git", "build", "demo_data", "standin_build", "outputs", "multirun")
    files = []
    for pattern in PROJECT_GLOBS:
        for path in REPO.rglob(pattern):
            parts = path.relative_to(REPO).parts
            if parts[0].startswith(skip) or "__pycache__" in parts or ".egg-info" in str(path):
                continue
            files.append(path)
    return sorted(set(files))


@pytest.mark.slow
def test_built_wheel_installs_and_runs_msbg_alone(tmp_path):
    """``pip wheel`` + ``pip install --target``: msbg (with its data files) runs from there."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("e032_sheffield-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    assert (site / "msbg" / "data" / "GT4FBank_Brd1.5E_Spaced1.1E_44100Fs.json").is_file()
    assert (site / "e032" / "minicpc1" / "data" / "cpc1_audiograms.json").is_file()

    env = {
        "PYTHONPATH": str(site),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
    }
    out_file = tmp_path / "out.npy"
    subprocess.run(
        [sys.executable, "-c", MSBG_SNIPPET, str(site), str(out_file)],
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    help_text = subprocess.run(
        [sys.executable, "-m", "msbg", "--help"],
        check=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "usage" in help_text.lower()

    # the same numbers as the checkout's msbg
    import msbg

    t = np.arange(44100) / 44100
    mono = 0.05 * np.sin(2 * np.pi * 1000 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    ear = msbg.Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
    ear.set_audiogram(
        msbg.Audiogram(
            levels=[10, 15, 15, 20, 25, 30, 30, 35],
            frequencies=[250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
        )
    )
    with threadpool_limits(1):  # as the subprocess (OMP_NUM_THREADS=1)
        here = np.asarray(ear.process(mono), dtype=np.float64).ravel()
    # (not bit-equal: this process's BLAS may use other threads and kernels than the subprocess's)
    np.testing.assert_allclose(np.load(out_file), here, rtol=0, atol=1e-8 * np.abs(here).max())


def test_no_sys_path_patches_outside_tests():
    """``pip install -e .`` makes msbg and e032 importable: no script patches ``sys.path``."""
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in project_files()
        if path.suffix == ".py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*sys\.path\.(insert|append)\(", line) and "pyclarity" not in line
    ]  # benchmarks may add a user-given pyclarity folder
    assert offenders == []


def test_no_references_to_the_developers_shared_folder():
    """A fresh clone has no ``../shared``: nothing outside tests/ may point there."""
    offenders = [
        str(path.relative_to(REPO))
        for path in project_files()
        if "../shared" in path.read_text(errors="replace")
    ]
    assert offenders == []
