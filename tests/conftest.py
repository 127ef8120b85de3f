"""Shared pytest fixtures.

``tiny_cpc1_root``: the ``tiny`` mini-CPC1 preset (seed 0), generated once per test session into a
pytest temporary folder, in the layout of the real CPC1 archives (see docs/mini_cpc1.md). Tests of the
other stages (prepare_data, end-to-end) take their input from it; treat it as read-only.
``tiny_cpc1_summary``: the generator's summary of that run (counts, ceilings, wall and CPU time).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TTS_PROGRAMS = ("espeak-ng", "flite", "sox")


def pytest_configure(config: pytest.Config) -> None:
    """Under CI (``REQUIRE_SYSTEM_DEPS=1``) missing TTS programs are an error, not skipped tests."""
    missing = [p for p in TTS_PROGRAMS if shutil.which(p) is None]
    if os.environ.get("REQUIRE_SYSTEM_DEPS") == "1" and missing:
        raise pytest.UsageError(f"REQUIRE_SYSTEM_DEPS=1 but {missing} are not installed (make system-deps)")


@pytest.fixture(scope="session")
def tiny_cpc1_summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Generate the ``tiny`` mini-CPC1 once per session; return the generator's summary dict."""
    missing = [p for p in ("espeak-ng", "flite") if shutil.which(p) is None]
    if missing:
        pytest.skip(
            f"mini-CPC1 needs the TTS programs {missing} (`make install` or apt-get install espeak-ng flite)"
        )
    from e032.minicpc1.generator import generate
    from e032.minicpc1.presets import PRESETS

    root = tmp_path_factory.mktemp("mini_cpc1_tiny")
    return generate(PRESETS["tiny"], root)


@pytest.fixture(scope="session")
def tiny_cpc1_root(tiny_cpc1_summary: dict) -> Path:
    """Root folder of the session's ``tiny`` mini-CPC1 (holds clarity_CPC1_data_{train,test}/ ...)."""
    return Path(tiny_cpc1_summary["root"])


@pytest.fixture(scope="session")
def tiny_cpc1_run(tiny_cpc1_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """All four scripts once on the tiny mini-CPC1 with the tiny oracle ASR (one run per session,
    shared by the end-to-end and the CPC1-digest tests; re-runs on it must change nothing)."""
    import json

    from tests.test_end_to_end import ASR_DATA, TINY_SIZES, run_recipe

    folder = tmp_path_factory.mktemp("tiny_cpc1_run")
    shutil.copytree(ASR_DATA / "tiny_ckpt_05x", folder / "pretrained")
    overrides_file = folder / "tiny_sizes.yaml"
    overrides_file.write_text(json.dumps(TINY_SIZES))  # JSON is YAML
    exp = folder / "exp"
    table = run_recipe(tiny_cpc1_root, exp, folder / "pretrained" / "save", overrides_file)
    return {
        "exp": exp,
        "pretrained": folder / "pretrained" / "save",
        "overrides_file": overrides_file,
        "table": table,
    }
