"""Per-stage tests of msbg against pyclarity 0.9.0 outputs and physical properties.

The pyclarity outputs are in tests/data/msbg/stage_oracle.npz (made by make_stage_oracle.py).

Tolerances: stage outputs must agree to 1e-12 relative to their peak (only float rounding may
differ: FFT vs direct convolution, batched vs per-frame products).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from msbg import Audiogram, Ear, _kernels, ear_filters, gammatone, levels, recruitment, smearing
from msbg.ear import Cochlea

DATA = Path(__file__).parent / "data" / "msbg"
RTOL_STAGE = 1e-12
#: The faithfulness bound of msbg (max |ours - pyclarity| / max|pyclarity|), for stages that
#: compute in float32 by default (docs/msbg.md, "Faithfulness").
RTOL_FAITHFUL = 1e-5
#: The recruitment gain's power law has a relative error ~1e-9 (_kernels.power).
RTOL_POWER = 1e-8


@pytest.fixture(scope="module")
def oracle():
    return dict(np.load(DATA / "stage_oracle.npz"))


def rel_dev(ours: np.ndarray, ref: np.ndarray) -> float:
    assert ours.shape == ref.shape
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- fir2 and ear filters ---------------------------------------------------------------------
@pytest.mark.parametrize("src_pos", ["ff", "df", "ITU"])
@pytest.mark.parametrize("backward", [False, True])
def test_ear_filter_taps_match_pyclarity(oracle, src_pos, backward):
    ref = oracle[f"taps_{src_pos}_{'backward' if backward else 'forward'}"]
    taps = ear_filters.ear_filter_taps(src_pos, 44100, backward)
    assert len(taps) == 1015
    assert rel_dev(taps, ref) < RTOL_STAGE


def test_fir2_linear_phase_and_gain():
    # Flat unit gain: a symmetric (linear-phase) filter with unit DC gain and peak at the centre.
    taps = ear_filters.fir2_design(101, (0.0, 1.0), (1.0, 1.0), ("kaiser", 4.0))
    np.testing.assert_allclose(taps, taps[::-1], atol=1e-15)
    assert int(np.argmax(taps)) == 50
    assert abs(taps.sum() - 1.0) < 1e-3
    # Low-pass at half Nyquist: passband ~0 dB, stopband far down.
    lp = ear_filters.fir2_design(201, (0.0, 0.45, 0.55, 1.0), (1.0, 1.0, 0.0, 0.0))
    freqs, response = scipy.signal.freqz(lp, worN=2048)
    gain_db = 20 * np.log10(np.abs(response) + 1e-300)
    assert np.max(np.abs(gain_db[freqs < 0.35 * np.pi])) < 0.1
    assert np.max(gain_db[freqs > 0.65 * np.pi]) < -40


def test_fir2_dc_gain_is_last_break_below_first_grid_point():
    """MATLAB/pyclarity quirk: breaks below 1/513 of Nyquist get no grid point of their own."""
    # Breaks at 0, 0.001 (below 1/513) and 1: the DC grid value is the gain at 0.001 (=2).
    taps = ear_filters.fir2_design(65, (0.0, 0.001, 1.0), (5.0, 2.0, 2.0), "boxcar")
    assert abs(taps.sum() - 2.0) < 1e-9


def test_ear_filter_cascade_is_nearly_flat():
    forward = ear_filters.ear_filter_taps("ff", 44100, False)
    backward = ear_filters.ear_filter_taps("ff", 44100, True)
    freqs = np.fft.rfftfreq(8192, 1 / 44100)
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(np.convolve(forward, backward), 8192)))
    band = (freqs > 200) & (freqs < 15000)
    assert np.all(np.abs(gain_db[band]) < 3.0)
    # the forward response is the correction at 1 kHz: 0 dB by construction
    fwd_db = 20 * np.log10(np.abs(np.fft.rfft(forward, 8192)))
    assert abs(np.interp(1000, freqs, fwd_db)) < 0.5


def test_lowpass_passes_below_and_stops_above_cutoff():
    taps = ear_filters.lowpass_taps(44100)
    assert len(taps) == 133
    freqs = np.fft.rfftfreq(8192, 1 / 44100)
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(taps, 8192)) + 1e-300)
    assert np.max(np.abs(gain_db[freqs < 16000])) < 0.01
    assert np.max(gain_db[freqs > 20000]) < -80


def test_apply_fir_equals_lfilter(rng):
    x = rng.standard_normal(5000)
    taps = ear_filters.ear_filter_taps("ff", 44100, False)
    ref = scipy.signal.lfilter(taps, 1, x)
    assert rel_dev(ear_filters.apply_fir(x, taps), ref) < 1e-13


def test_unknown_src_pos():
    with pytest.raises(ValueError, match="src_pos"):
        ear_filters.source_correction_db("front")


# ---- smearing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", ["severe", "moderate", "mild"])
def test_smearing_matrix_matches_pyclarity(oracle, severity):
    lower, upper = smearing.SMEAR_BROADENING[severity.upper()]
    matrix = smearing.smearing_matrix(lower, upper, 44100.0)
    assert matrix.shape == (256, 256)
    ref = oracle[f"smear_matrix_{severity}_rows"]
    assert rel_dev(matrix[oracle["smear_rows"]], ref) < 1e-10


def test_smearing_matrix_preserves_power_in_the_middle():
    # Broadened filters redistribute power across bins but keep its total (rows sum to ~1).
    matrix = smearing.smearing_matrix(4.0, 2.0, 44100.0)
    row_sums = matrix.sum(axis=1)[20:230]
    assert np.all(np.abs(row_sums - 1) < 0.07)
    # ...and spread it: the diagonal is well below 1
    assert np.all(np.diag(matrix)[20:230] < 0.5)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, RTOL_STAGE), (np.float32, RTOL_FAITHFUL)])
def test_smear_matches_pyclarity(oracle, dtype, rtol, monkeypatch):
    """float64: pyclarity's numbers to rounding; the default float32 matrix product and inverse
    FFT (smearing.SMEAR_DTYPE): measured 5.3e-8 of the peak, bound 1e-5."""
    monkeypatch.setattr(smearing, "SMEAR_DTYPE", dtype)
    matrix = smearing.smearing_matrix(1.6, 1.1, 44100.0)
    out = smearing.smear(oracle["smear_input"], matrix)
    assert rel_dev(out, oracle["smear_mild_output"]) < rtol


@pytest.mark.parametrize("n_samples", [1, 63, 64, 256, 500, 1000, 12345])
def test_smear_length(n_samples, rng):
    out = smearing.smear(rng.standard_normal(n_samples), smearing.smearing_matrix(1.6, 1.1, 44100.0))
    assert len(out) == (math.ceil(n_samples / 64) + 3) * 64 == smearing.smeared_length(n_samples)
    assert np.all(np.isfinite(out))


def test_clean_framing_reconstructs_delayed_input_without_smearing():
    """With S = I (no smearing), "clean" framing is a perfect 192-sample delay (to the Nyquist
    bin, which smear3 zeroes); pyclarity's framing garbles the start and the tail."""
    t = np.arange(3000) / 44100
    x = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)
    identity = np.eye(256)
    clean = smearing.smear(x, identity, framing="clean")
    delayed = np.zeros_like(clean)
    delayed[192 : 192 + len(x)] = x
    assert len(clean) == smearing.smeared_length(len(x))
    assert np.max(np.abs(clean - delayed)) < 1e-3
    quirky = smearing.smear(x, identity)
    assert np.max(np.abs(quirky[:192] - delayed[:192])) > 0.1  # duplicated start
    np.testing.assert_allclose(quirky[448:2900], clean[448:2900], atol=1e-12)  # same after frame 3
    with pytest.raises(ValueError, match="framing"):
        smearing.smear(x, identity, framing="matlab")


def test_smear_kernel_equals_numpy_path(oracle, monkeypatch):
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    matrix = smearing.smearing_matrix(4.0, 2.0, 44100.0)
    fast = smearing.smear(oracle["smear_input"], matrix)
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    np.testing.assert_array_equal(fast, smearing.smear(oracle["smear_input"], matrix))


def test_window_squares_sum_to_one_at_hop():
    window = smearing.frame_window()
    overlap = (window**2).reshape(4, 64).sum(axis=0)
    np.testing.assert_allclose(overlap, 1.0, atol=1e-12)


# ---- gammatone, envelope, recruitment -------------------------------------------------------
def test_gammatone_matches_pyclarity(oracle):
    bank = gammatone.filterbank_for("MODERATE")
    assert bank.n_channels == 28
    out = gammatone.gammatone_filter(oracle["cochlea_input"], bank)
    assert rel_dev(out, oracle["gammatone_moderate"]) < RTOL_STAGE


@pytest.mark.parametrize("severity", ["MILD", "MODERATE", "SEVERE"])
def test_compiled_kernels_equal_scipy_filters(severity, rng):
    """The numba kernels run the same recursions as sosfilt/filtfilt: equal to rounding."""
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    bank = gammatone.filterbank_for(severity)
    x = rng.standard_normal(3000) * 0.1
    ref = gammatone.gammatone_filter(x, bank)
    fast = gammatone.gammatone_filter_time_major(x, bank)
    assert fast.shape == (3000, bank.n_channels)
    assert rel_dev(fast.T, ref) < 1e-14
    env_ref = recruitment.envelope(ref, bank.erb_hz, 44100.0)
    env_fast = recruitment.envelope_time_major(np.ascontiguousarray(ref.T), bank.erb_hz, 44100.0)
    assert rel_dev(env_fast.T, env_ref) < 1e-14


@pytest.mark.parametrize("n_samples", [1, 100, 300, 700])
def test_gammatone_kernel_shorter_than_channel_delays(n_samples, rng):
    """Signals shorter than the largest channel advance (485 samples): zero-filled tails."""
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    bank = gammatone.filterbank_for("MILD")
    x = rng.standard_normal(n_samples)
    fast = gammatone.gammatone_filter_time_major(x, bank)
    ref = gammatone.gammatone_filter(x, bank)
    assert fast.shape == (n_samples, bank.n_channels)
    np.testing.assert_allclose(fast.T, ref, rtol=0, atol=1e-14 * np.max(np.abs(ref)))


def test_kernel_power_matches_numpy(rng):
    """The vectorisable power law of the recruitment gain: relative error < 1e-9 (|e| + 1)."""
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    bases = np.concatenate((np.exp(rng.uniform(np.log(5e-9), 0.0, 3000)), [1.0, 0.5, 5.6e-9, 2.0, 1e5]))
    exponents = rng.uniform(-0.5, 3.0, len(bases))
    ours = np.array([_kernels.power(b, e) for b, e in zip(bases, exponents, strict=True)])
    ref = np.power(bases, exponents)
    assert np.all(np.abs(ours - ref) <= 1e-9 * (np.abs(exponents) + 1) * ref)
    assert _kernels.power(0.3, 0.0) == 1.0 and _kernels.power(1.0, 1.7) == 1.0
    assert 0.0 <= _kernels.power(1e-300, 50.0) < 1e-300  # underflow clamps to ~2**-1020


@pytest.mark.parametrize("severity", ["MILD", "MODERATE", "SEVERE"])
@pytest.mark.parametrize("n_samples", [9, 300, 700, 5000])
@pytest.mark.parametrize("forward_dtype, rtol", [(np.float64, RTOL_POWER), (np.float32, 1e-7)])
def test_fused_cochlea_passes_equal_stagewise(severity, n_samples, forward_dtype, rtol, rng, monkeypatch):
    """Gammatone + forward envelope pass, then backward pass + gain + sum (two fused kernels)
    == the scipy/numpy stage-by-stage path, also for signals shorter than the channel delays
    (the power law: ~1e-9; float32 storage of the forward envelope pass: within 1e-7)."""
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    bank = gammatone.filterbank_for(severity)
    x = rng.standard_normal(n_samples) * 0.3
    ratios = recruitment.expansion_ratios(bank.centre_hz, Audiogram([-10, 20, 30, 40, 50, 60, 70, 80]))
    channels, forward = recruitment.filter_envelope_forward(x, bank, forward_dtype=forward_dtype)
    assert channels.dtype == np.float64 and forward.dtype == forward_dtype
    assert channels.shape[1] % 8 == 0 and not np.any(channels[:, bank.n_channels :])
    fast = recruitment.recruit_and_sum_backward(channels, forward, bank, ratios, 120.0)
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    reference_channels = gammatone.gammatone_filter_time_major(x, bank)
    np.testing.assert_array_equal(channels[:, : bank.n_channels], reference_channels)
    slow = recruitment.recruit_and_sum_time_major(reference_channels, bank.erb_hz, 44100.0, ratios, 120.0)
    assert fast.shape == (n_samples,)
    assert rel_dev(fast, slow) < rtol


def test_fused_cochlea_workspace_is_reused(rng):
    """Work arrays come from the caller's workspace (no fresh memory); results are equal."""
    if not _kernels.AVAILABLE:
        pytest.skip("numba not available (or MSBG_BACKEND=scipy)")
    bank = gammatone.filterbank_for("SEVERE")
    workspace: dict = {}
    first = recruitment.filter_envelope_forward(rng.standard_normal(3000), bank, workspace)
    x = rng.standard_normal(2000)
    second = recruitment.filter_envelope_forward(x, bank, workspace)
    assert np.shares_memory(first[0], second[0]) and np.shares_memory(first[1], second[1])
    fresh = recruitment.filter_envelope_forward(x, bank)
    np.testing.assert_array_equal(second[0], fresh[0])
    np.testing.assert_array_equal(second[1], fresh[1])


def test_fused_cochlea_rejects_too_short_signal():
    with pytest.raises(ValueError, match="too short"):
        recruitment.filter_envelope_forward(np.ones(8), gammatone.filterbank_for("MILD"))


def test_filterbanks_have_documented_shape():
    for severity, n_channels, first_hp in (
        ("MILD", 36, 14),
        ("MODERATE", 28, 12),
        ("SEVERE", 19, 9),
    ):
        bank = gammatone.filterbank_for(severity)
        assert (bank.n_channels, bank.first_highpass) == (n_channels, first_hp)
        assert bank.sos.shape == (n_channels, 4, 6)
        assert np.all(np.diff(bank.centre_hz) > 0)
    assert gammatone.filterbank_for("NOTHING") is gammatone.filterbank_for("MILD")


def test_gammatone_channel_peaks_near_its_centre_frequency():
    bank = gammatone.filterbank_for("SEVERE")
    impulse = np.zeros(16384)
    impulse[0] = 1.0
    channels = gammatone.gammatone_filter(impulse, bank)
    freqs = np.fft.rfftfreq(16384, 1 / 44100)
    peaks_hz = freqs[np.argmax(np.abs(np.fft.rfft(channels, axis=1)), axis=1)]
    mid = slice(3, bank.n_channels - 2)  # high-passed lowest channels / top channels aside
    np.testing.assert_allclose(peaks_hz[mid], bank.centre_hz[mid], rtol=0.15)


def test_envelope_matches_pyclarity(oracle):
    bank = gammatone.filterbank_for("MODERATE")
    env = recruitment.envelope(oracle["gammatone_moderate"], bank.erb_hz, 44100.0)
    assert rel_dev(env, oracle["envelope_moderate"]) < RTOL_STAGE


@pytest.mark.parametrize("dtype, rtol", [(np.float64, RTOL_POWER), (np.float32, 1e-6)])
def test_cochlea_matches_pyclarity(oracle, dtype, rtol, monkeypatch):
    """float64 throughout: pyclarity's numbers to the power law's ~1e-9. The defaults, float32
    storage of the forward envelope pass (recruitment.FORWARD_DTYPE, ~5e-9 of the peak) and
    float32 smearing product and inverse FFT (smearing.SMEAR_DTYPE): measured 4e-8."""
    monkeypatch.setattr(recruitment, "FORWARD_DTYPE", dtype)
    monkeypatch.setattr(smearing, "SMEAR_DTYPE", dtype)
    cochlea = Cochlea.from_audiogram(Audiogram(oracle["cochlea_levels"]), 44100)
    out = cochlea.simulate(oracle["cochlea_input"], 120.0)
    assert rel_dev(out, oracle["cochlea_moderate_output"]) < rtol


def test_expansion_ratio_interpolates_and_holds_flat():
    audiogram = Audiogram(levels=[0, 10, 20, 30, 40, 50, 60, 70])
    ratios = recruitment.expansion_ratios(np.array([100.0, 250.0, 750.0, 9000.0]), audiogram)
    expected_hl = np.array([0.0, 0.0, 15.0, 70.0])
    np.testing.assert_allclose(ratios, 105 / (105 - expected_hl))


def test_zero_loss_recruitment_is_identity(rng):
    channels = rng.standard_normal((5, 1000))
    env = np.abs(rng.standard_normal((5, 1000)))
    ratios = recruitment.expansion_ratios(np.linspace(100, 8000, 5), Audiogram([0] * 8))
    out = recruitment.recruit(channels, env, ratios, 120.0)
    np.testing.assert_array_equal(out, channels)


def test_recruitment_attenuates_quiet_more_than_loud():
    channels = np.ones((1, 3))
    env_max = 10 ** ((105 - 120) / 20)
    env = np.array([[env_max, env_max / 10, env_max / 100]])  # 0, -20, -40 dB re catch-up
    out = recruitment.recruit(channels, env, np.array([2.0]), 120.0)  # ER 2: doubles dB distance
    np.testing.assert_allclose(20 * np.log10(out[0]), [0.0, -20.0, -40.0], atol=1e-9)


# ---- levels ---------------------------------------------------------------------------------
def test_active_rms_matches_pyclarity(oracle):
    rms, active = levels.active_rms(oracle["rms_input"], 44100)
    assert abs(rms - float(oracle["rms_value"])) < 1e-15
    assert int(active.sum()) * 441 == int(oracle["rms_n_kept"])


def test_normalise_level_scales_active_rms_to_overall(rng):
    x = np.concatenate([np.zeros(44100), 0.1 * rng.standard_normal(44100)])
    y = levels.normalise_level(x, 44100)
    rms, _ = levels.active_rms(y, 44100)
    assert abs(20 * np.log10(rms) - 10 * np.log10(np.mean(x**2))) < 0.01
    assert y is not x and np.all(x[44100:] != y[44100:])


# ---- delays and lengths (notes 6.7) -------------------------------------------------------------
@pytest.mark.parametrize(
    ("levels_db_hl", "expected_len", "expected_delay"),
    [(None, 22050, 1080), ([0] * 8, 22050, 1078), ([20] * 8, 22272, 1270)],
)
def test_impulse_delay_and_length(levels_db_hl, expected_len, expected_delay):
    x = np.zeros(22050)
    x[5000] = 1.0
    ear = Ear()
    if levels_db_hl is not None:
        ear.set_audiogram(Audiogram(levels_db_hl))
    y = ear.process(x)[0]
    assert len(y) == expected_len
    assert int(np.argmax(np.abs(y))) - 5000 == expected_delay


def test_calibration_prefix_lengths():
    prefix, suffix = levels.calibration_signals(-30.0, 44100, np.random.default_rng(0))
    assert len(prefix) == int(0.05 * 44100) * 3 + 22050 + 88200
    assert len(suffix) == 2205
    noise = prefix[2205 * 2 + 22050 : 2205 * 2 + 22050 + 88200]
    assert abs(10 * np.log10(np.mean(noise**2)) + 30.0) < 1e-9


def test_doctests():
    import doctest

    import msbg.audiogram
    import msbg.ear
    import msbg.ear_filters
    import msbg.levels
    import msbg.recruitment

    for module in (msbg.audiogram, msbg.ear, msbg.ear_filters, msbg.levels, msbg.recruitment):
        result = doctest.testmod(module, extraglobs={"np": np})
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__
