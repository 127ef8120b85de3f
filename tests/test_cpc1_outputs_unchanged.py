"""CPC1 results stay byte-identical: the tiny end-to-end outputs against stored sha256 digests.

The digests in ``tests/data/e2e_digests/tiny_cpc1_outputs.json`` were recorded with the code of
main before the dataset interface was wired into the stages (``E032_RECORD_DIGESTS=1`` rewrites
them). Recorded: the split lists, the MSBG outputs, the 16 kHz files, the 18 CSVs, the four
similarity files, ``results.json`` and the submission CSVs; not the ASR checkpoint folder (its
name carries the time), logs, stage records (absolute paths) or the plot (matplotlib version).
The test skips where the TTS engines differ from those of the recording (other audio).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import pytest

from tests.test_datasets import TTS_MISSING, _tts_versions

REPO = Path(__file__).resolve().parents[1]
DIGESTS = REPO / "tests" / "data" / "e2e_digests" / "tiny_cpc1_outputs.json"
RECORD = os.environ.get("E032_RECORD_DIGESTS") == "1"
OUTPUT_GLOBS = (
    "data_split/*.json",
    "msbg/**/*.wav",
    "cpc1_asr_data/*.csv",
    "cpc1_asr_data/**/*.wav",
    "*_similarity.json",
    "results.json",
    "submission/*.csv",
)


def output_digests(exp: Path) -> dict[str, str]:
    """sha256 of each recorded output of a CPC1 run under ``exp`` (relative POSIX path -> hex)."""
    files = sorted({p for pattern in OUTPUT_GLOBS for p in exp.glob(pattern) if p.is_file()})
    return {p.relative_to(exp).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.slow
@pytest.mark.skipif(bool(TTS_MISSING), reason=f"needs the TTS programs {TTS_MISSING}")
def test_tiny_cpc1_outputs_are_byte_identical_to_before(tiny_cpc1_run: dict):
    stored = json.loads(DIGESTS.read_text()) if DIGESTS.is_file() else None
    if not RECORD and stored is not None and _tts_versions() != stored["tts_versions"]:
        pytest.skip(f"TTS versions {_tts_versions()} differ from {stored['tts_versions']}")
    exp = tiny_cpc1_run["exp"]  # the session's run (shared with tests/test_end_to_end.py)
    digests = output_digests(exp)
    if RECORD:
        DIGESTS.parent.mkdir(parents=True, exist_ok=True)
        DIGESTS.write_text(
            json.dumps(
                {
                    "what": "sha256 of each output of the tiny mini-CPC1 end-to-end run "
                    "(tests/test_end_to_end.py run_recipe), seed 0",
                    "tts_versions": _tts_versions(),
                    "machine": platform.machine(),
                    "n_files": len(digests),
                    "sha256": digests,
                },
                indent=1,
            )
            + "\n"
        )
        return
    assert stored is not None, f"no digests: run with E032_RECORD_DIGESTS=1 to write {DIGESTS}"
    changed = sorted(
        k for k in set(digests) | set(stored["sha256"]) if digests.get(k) != stored["sha256"].get(k)
    )
    assert (
        not changed
    ), f"{len(changed)} CPC1 output(s) changed: {[c for c in changed if not c.startswith('msbg')][:20]}"
