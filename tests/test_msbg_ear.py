"""End-to-end tests of msbg.Ear / listen against pyclarity 0.9.0 outputs, and input validation.

Oracle tolerance (from ../shared/msbg_reference/README.md): same shape and max |ours - ref| <=
1e-5 * max|ref| per case. Two short cases are bundled in tests/data/msbg; when the shared folder
beside the checkout exists, all 8 cases and the real CPC1 sample are checked too.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from msbg import Audiogram, Ear, Listener, listen

DATA = Path(__file__).parent / "data" / "msbg"
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
REFERENCE_DIR = SHARED / "msbg_reference"
CPC1_DIR = SHARED / "cpc1_sample"
ORACLE_RTOL = 1e-5


def run_case(path: Path) -> tuple[np.ndarray, np.ndarray]:
    case = np.load(path)
    ear = Ear(
        src_pos=str(case["src_pos"]),
        sample_rate=int(case["sample_rate"]),
        equiv_0db_spl=float(case["equiv_0db_spl"]),
        ahr=float(case["ahr"]),
    )
    cfs = case["audiogram_cfs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # some cases exceed 80 dB HL
        out = listen(
            ear,
            case["input"].astype(np.float64),
            Audiogram(case["audiogram_left"], cfs),
            Audiogram(case["audiogram_right"], cfs),
        )
    return out, case["output"].astype(np.float64)


def assert_matches(out: np.ndarray, ref: np.ndarray, rtol: float = ORACLE_RTOL) -> None:
    assert out.shape == ref.shape
    assert out.dtype == np.float64
    deviation = np.max(np.abs(out - ref)) / np.max(np.abs(ref))
    assert deviation <= rtol, f"max deviation {deviation:.2e} x max|ref| > {rtol:g}"


@pytest.mark.parametrize("name", ["case01_04", "case01_06"])
def test_bundled_reference_case(name):
    out, ref = run_case(DATA / f"{name}.npz")
    assert_matches(out, ref)


def test_scipy_fallback_matches_reference(monkeypatch):
    """Without numba, msbg uses per-channel scipy filters: same numbers."""
    from msbg import _kernels

    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    out, ref = run_case(DATA / "case01_04.npz")
    assert_matches(out, ref)


def shared_cases() -> list[str]:
    if not (REFERENCE_DIR / "index.json").is_file():
        return []
    return [case["name"] for case in json.loads((REFERENCE_DIR / "index.json").read_text())]


@pytest.mark.skipif(not shared_cases(), reason="../shared/msbg_reference not present")
@pytest.mark.parametrize("name", shared_cases() or ["none"])
def test_shared_reference_case(name):
    out, ref = run_case(REFERENCE_DIR / f"{name}.npz")
    assert_matches(out, ref)


@pytest.mark.skipif(not CPC1_DIR.is_dir(), reason="../shared/cpc1_sample not present")
def test_real_cpc1_signal_matches_committed_output():
    from e032.io import read_wav

    train = CPC1_DIR / "clarity_CPC1_data_train"
    listener = Listener.load_listener_dict(train / "metadata/listeners.CPC1_train.json")["L0239"]
    signal = read_wav(train / "clarity_data/HA_outputs/train/S08510_L0239_E001.wav", 44100, 2)
    ref = read_wav(CPC1_DIR / "expected_msbg/S08510_L0239_E001_HL-output.wav", 44100, 2)
    with pytest.warns(UserWarning, match="reaches") as record:
        out = listen(Ear(), signal, listener.audiogram_left, listener.audiogram_right)
    assert sorted(str(w.message).split()[2] for w in record) == ["100", "90"]  # L, R > 80 dB HL
    assert out.shape == ref.shape == (259584, 2)
    # float32 storage of the committed file (~8e-8) plus msbg's float32 smearing product and
    # inverse FFT (smearing.SMEAR_DTYPE; measured 4.8e-7 = 2.0e-7 of the peak): the oracle bound
    assert_matches(out, ref)


# ---- behaviour ----------------------------------------------------------------------------------
@pytest.fixture
def speech_like():
    rng = np.random.default_rng(7)
    t = np.arange(22050) / 44100
    return 0.05 * rng.standard_normal(22050) * (1 + np.sin(2 * np.pi * 3 * t))


def test_listen_pads_shorter_ear_at_start(speech_like):
    signal = np.stack([speech_like, speech_like], axis=1)
    ear = Ear()
    normal, impaired = Audiogram([0] * 8), Audiogram([40] * 8)
    out = listen(ear, signal, normal, impaired)
    ear.set_audiogram(normal)
    left = ear.process(speech_like)[0]
    assert out.shape == (22272, 2) and len(left) == 22050
    np.testing.assert_array_equal(out[:222, 0], 0.0)
    np.testing.assert_array_equal(out[222:, 0], left)


def test_process_is_pure_and_deterministic(speech_like):
    ear = Ear()
    ear.set_audiogram(Audiogram([10, 15, 20, 30, 40, 50, 60, 60]))
    before = speech_like.copy()
    first, second = ear.process(speech_like), ear.process(speech_like)
    np.testing.assert_array_equal(speech_like, before)
    assert isinstance(first, list) and len(first) == 1  # one output per channel, as pyclarity
    np.testing.assert_array_equal(first[0], second[0])
    assert first[0].ndim == 1 and first[0].dtype == np.float64


def test_column_vector_is_mono(speech_like):
    ear = Ear()
    np.testing.assert_array_equal(ear.process(speech_like[:, None])[0], ear.process(speech_like)[0])


def test_clean_smearing_framing_option(speech_like):
    audiogram = Audiogram([10, 15, 20, 30, 40, 50, 60, 60])
    faithful, clean = Ear(), Ear(smearing_framing="clean")
    faithful.set_audiogram(audiogram)
    clean.set_audiogram(audiogram)
    a, b = faithful.process(speech_like)[0], clean.process(speech_like)[0]
    assert a.shape == b.shape
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a[3000:-3000], b[3000:-3000], atol=1e-6 * np.max(np.abs(a)))
    with pytest.raises(ValueError, match="smearing_framing"):
        Ear(smearing_framing="matlab")


def test_calibration_prefix_is_prepended(speech_like):
    ear = Ear()
    out = ear.process(speech_like, add_calibration=True, rng=np.random.default_rng(3))[0]
    assert len(out) == len(speech_like) + 3 * 2205 + 22050 + 88200 + 2205
    again = ear.process(speech_like, add_calibration=True, rng=np.random.default_rng(3))[0]
    np.testing.assert_array_equal(out, again)
    timings: dict = {}
    ear.process(speech_like, timings=timings)
    assert set(timings) >= {"level", "ear_filters"} and all(t >= 0 for t in timings.values())


def test_all_zero_signal_gives_zeros():
    ear = Ear()
    ear.set_audiogram(Audiogram([30] * 8))
    out = ear.process(np.zeros(10000))[0]
    assert out.shape == (10240,)
    assert np.all(out == 0)


def test_louder_input_is_not_simply_scaled(speech_like):
    """Recruitment is level dependent: 20 dB more input gives more than 20 dB more output."""
    ear = Ear()
    ear.set_audiogram(Audiogram([40] * 8))
    quiet = np.sqrt(np.mean(ear.process(0.1 * speech_like)[0] ** 2))
    loud = np.sqrt(np.mean(ear.process(speech_like)[0] ** 2))
    assert 20 * np.log10(loud / quiet) > 25


def test_severity_classes():
    assert Audiogram([0] * 8).severity == "NOTHING"
    assert Audiogram([0, 0, 0, 16, 16, 16, 16, 16]).severity == "MILD"
    assert Audiogram([0, 0, 0, 36, 36, 36, 36, 36]).severity == "MODERATE"
    assert Audiogram([0, 0, 0, 57, 57, 57, 57, 57]).severity == "SEVERE"
    assert Audiogram([90, 90], [250, 500]).severity == "NOTHING"  # nothing in 2-8 kHz


def test_warns_above_80_db_hl():
    ear = Ear()
    with pytest.warns(UserWarning, match="85 dB HL"):
        ear.set_audiogram(Audiogram([10, 20, 30, 40, 50, 60, 70, 85]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ear.set_audiogram(Audiogram([10, 20, 30, 40, 50, 60, 70, 80]))


def test_listener_file(tmp_path):
    record = {
        "name": "L1",
        "audiogram_cfs": [250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
        "audiogram_levels_l": [10] * 8,
        "audiogram_levels_r": [20] * 8,
    }
    path = tmp_path / "listeners.json"
    path.write_text(json.dumps({"L1": record}))
    listeners = Listener.load_listener_dict(path)
    assert listeners["L1"].name == "L1"
    assert listeners["L1"].audiogram_right == Audiogram([20] * 8)
    del record["audiogram_levels_r"]
    path.write_text(json.dumps({"L1": record}))
    with pytest.raises(ValueError, match=r"listeners\.json.*'L1'.*audiogram_levels_r"):
        Listener.load_listener_dict(path)
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        Listener.load_listener_dict(tmp_path / "nowhere.json")


# ---- bad input: one clear ValueError each -------------------------------------------------------
@pytest.mark.parametrize(
    ("signal", "match"),
    [
        (np.array([0.1, np.nan] * 500), "NaN/Inf"),
        (np.array([0.1, np.inf] * 500), "NaN/Inf"),
        (np.zeros((10, 10, 2)), "mono"),
        (np.zeros((2, 1000)), "transpose"),
        (np.zeros(0), "empty"),
        (np.ones(300) * 0.1, "at least one 10 ms frame"),
        (np.ones(1000) * 1e-7, "too quiet"),
    ],
)
def test_bad_signal(signal, match):
    with pytest.raises(ValueError, match=match):
        Ear().process(signal)


def test_listen_needs_two_columns():
    with pytest.raises(ValueError, match=r"\(n_samples, 2\)"):
        listen(Ear(), np.zeros(1000), Audiogram([0] * 8), Audiogram([0] * 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sample_rate": 16000}, "44100"), ({"src_pos": "front"}, "src_pos")],
)
def test_bad_ear_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Ear(**kwargs)


@pytest.mark.parametrize(
    ("levels", "frequencies", "match"),
    [
        ([10] * 7, None, "7 levels but 8 frequencies"),
        ([10, None, 10, 10, 10, 10, 10, 10], None, "missing at 500 Hz"),
        ([10, np.nan, 10, 10, 10, 10, 10, 10], None, "500 Hz"),
        ([10] * 7 + [105], None, "below 105 dB HL"),
        ([10] * 7 + [120], None, "below 105 dB HL"),
        ([10, 10], [500, 250], "increase"),
    ],
)
def test_bad_audiogram(levels, frequencies, match):
    kwargs = {} if frequencies is None else {"frequencies": frequencies}
    with pytest.raises(ValueError, match=match):
        Audiogram(levels=levels, **kwargs)


def test_audiogram_is_hashable_and_immutable():
    audiogram = Audiogram([10] * 8)
    assert hash(audiogram) == hash(Audiogram([10.0] * 8))
    with pytest.raises(ValueError):
        audiogram.levels[0] = 50
