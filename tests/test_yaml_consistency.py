"""Every key of ``transformer_cpc1.yaml`` and ``config.yaml`` is read by someone.

A key counts as read when another yaml entry references it (``<key>`` / ``${...}``), when the
project's code names it (``hparams["key"]``, ``hparams.get("key")``, ``.key``, ``"key"``), or when
SpeechBrain itself reads it from the hparams (its ``Brain`` run options, HyperPyYAML's
``__``-prefixed keys that run on load). Dead keys mislead a reader into thinking they do something.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from speechbrain.core import RunOptions

import msbg

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("e032", "demo")
SCRIPTS = ("prepare_data.py", "train_asr.py", "infer.py", "evaluate.py")
# config.yaml keys read by Hydra itself
HYDRA_KEYS = {"hydra", "job", "chdir", "run", "dir", "sweep", "subdir", "output_subdir"}


def code_text() -> str:
    files = [REPO / name for name in SCRIPTS]
    files += [p for d in CODE_DIRS for p in (REPO / d).rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


def top_level_keys(text: str) -> list[str]:
    return re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", text, flags=re.M)


def named_in_code(key: str, code: str) -> bool:
    return re.search(rf"[\"']{re.escape(key)}[\"']|\.{re.escape(key)}\b", code) is not None


def test_every_asr_yaml_key_is_read():
    text = (REPO / "transformer_cpc1.yaml").read_text()
    code = code_text()
    read_by_speechbrain = set(RunOptions().as_dict())
    dead = [
        key
        for key in top_level_keys(text)
        if not key.startswith("__")  # HyperPyYAML runs these on load (e.g. __set_seed)
        and key not in read_by_speechbrain
        and f"<{key}>" not in text
        and not named_in_code(key, code)
    ]
    assert dead == [], f"keys of transformer_cpc1.yaml nobody reads: {dead}"


def test_every_recipe_config_key_is_read():
    """``MSBGEar`` is passed whole to ``msbg.Ear``: its keys must be that class's parameters."""
    text = (REPO / "config.yaml").read_text()
    code = code_text()
    ear_parameters = set(inspect.signature(msbg.Ear).parameters)
    keys = re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*):", text, flags=re.M)
    dead = [
        key
        for key in dict.fromkeys(keys)
        if key not in HYDRA_KEYS
        and key not in ear_parameters
        and not re.search(rf"\$\{{[^}}]*\b{re.escape(key)}\b", text)
        and not named_in_code(key, code)
    ]
    assert dead == [], f"keys of config.yaml nobody reads: {dead}"


@pytest.mark.parametrize("key", ["decoder_memory_mask", "test_beam_size"])
def test_the_check_sees_keys_that_are_read(key):
    """The check itself: keys the code is known to read are found (guards the regexes)."""
    assert named_in_code(key, code_text())
    assert not named_in_code("no_such_key_anywhere_xyz", code_text())
