"""msbg's API is pyclarity 0.9.0's: a snippet written for pyclarity runs unchanged on msbg.

The snippet is the same function for both; only the classes passed in differ. When pyclarity is
importable (``pip install --no-deps --target /tmp/pyclarity_site pyclarity==0.9.0``; the folder
can be changed with ``PYCLARITY_SITE``) the outputs are compared too, to 1e-5 of the peak.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

import numpy as np
import pytest

import msbg

PYCLARITY_SITE = os.environ.get("PYCLARITY_SITE", "/tmp/pyclarity_site")
#: Faithfulness bound of msbg, relative to the peak of pyclarity's output.
MAX_DEVIATION_REL = 1e-5
LISTENER_RECORD = {
    "name": "L0001",
    "audiogram_cfs": [250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
    "audiogram_levels_l": [10, 15, 20, 30, 40, 50, 60, 60],
    "audiogram_levels_r": [30, 25, 25, 50, 65, 75, 75, 80],
}


def pyclarity_snippet(Ear, Audiogram, Listener, signal, listener_file):  # noqa: N803
    """What a pyclarity user writes (pyclarity 0.9.0 API), with classes passed in."""
    frequencies = np.array([250, 500, 1000, 2000, 3000, 4000, 6000, 8000])
    listener = Listener(
        audiogram_left=Audiogram(levels=np.array([10, 15, 20, 30, 40, 50, 60, 60]), frequencies=frequencies),
        audiogram_right=Audiogram(levels=np.array([30, 25, 25, 50, 65, 75, 75, 80]), frequencies=frequencies),
        id="L0001",
    )
    ear = Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
    ear.set_audiogram(listener.audiogram_left)
    left = ear.process(signal[:, 0])[0]
    ear.set_audiogram(listener.audiogram_right)
    right = ear.process(signal[:, 1])[0]
    both = ear.process(signal)  # (n, 2): both channels through one ear
    loaded = Listener.load_listener_dict(listener_file)["L0001"]
    ear.set_audiogram(loaded.audiogram_left)
    left_again = ear.process(signal[:, 0])[0]
    return {
        "left": left,
        "right": right,
        "both_0": both[0],
        "both_1": both[1],
        "left_again": left_again,
        "n_both": len(both),
        "id": loaded.id,
    }


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(5)
    t = np.arange(44100) / 44100
    envelope = 1 + np.sin(2 * np.pi * 3 * t)[:, None]
    return 0.05 * rng.standard_normal((44100, 2)) * envelope


@pytest.fixture(scope="module")
def listener_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("listeners") / "listeners.json"
    path.write_text(json.dumps({"L0001": LISTENER_RECORD}))
    return str(path)


@pytest.fixture(scope="module")
def ours(signal, listener_file) -> dict:
    return pyclarity_snippet(msbg.Ear, msbg.Audiogram, msbg.Listener, signal, listener_file)


def test_snippet_runs_on_msbg(ours, signal):
    for key in ("left", "right", "both_0", "both_1", "left_again"):
        assert isinstance(ours[key], np.ndarray) and ours[key].ndim == 1, key
        assert ours[key].dtype == np.float64 and len(ours[key]) > 44100, key
    assert ours["n_both"] == 2 and ours["id"] == "L0001"
    np.testing.assert_array_equal(ours["left"], ours["left_again"])
    # one Ear, one audiogram: each channel of an (n, 2) signal goes through the same ear
    np.testing.assert_array_equal(ours["both_1"].shape, ours["right"].shape)


def test_listener_order_is_pyclarity_s():
    left, right = msbg.Audiogram([0] * 8), msbg.Audiogram([40] * 8)
    listener = msbg.Listener(left, right, "L7")
    assert (listener.audiogram_left, listener.audiogram_right, listener.id) == (left, right, "L7")
    assert listener.name == "L7"
    with pytest.raises(ValueError, match="audiogram_left must be an msbg.Audiogram"):
        msbg.Listener("L7", left, right)  # our former order: an error, not a silent swap
    with pytest.raises(ValueError, match="id must be a str"):
        msbg.Listener(left, right, 7)


def _import_pyclarity():
    if PYCLARITY_SITE not in sys.path:
        sys.path.append(PYCLARITY_SITE)
    try:
        from clarity.evaluator.msbg.msbg import Ear
        from clarity.utils.audiogram import Audiogram, Listener
    except ImportError:
        pytest.skip(f"pyclarity 0.9.0 not importable (install it into {PYCLARITY_SITE})")
    return Ear, Audiogram, Listener


def test_snippet_matches_pyclarity(ours, signal, listener_file):
    classes = _import_pyclarity()
    logging.disable(logging.WARNING)  # pyclarity logs its level and severity messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = pyclarity_snippet(*classes, signal, listener_file)
    finally:
        logging.disable(logging.NOTSET)
    assert theirs["n_both"] == ours["n_both"] and theirs["id"] == ours["id"]
    for key in ("left", "right", "both_0", "both_1", "left_again"):
        assert ours[key].shape == theirs[key].shape, key
        peak = np.max(np.abs(theirs[key]))
        deviation = np.max(np.abs(ours[key] - theirs[key])) / peak
        assert deviation <= MAX_DEVIATION_REL, (key, deviation)
