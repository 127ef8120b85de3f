"""Tests of evaluate.py and e032/evaluation.py: metrics, logistic fit, pairing, outputs, errors.

All data are synthetic JSON files in the CPC1 layout, built in a temporary folder (no audio).
"""

from __future__ import annotations

import csv
import doctest
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from scipy.stats import kendalltau, pearsonr

import evaluate
from e032 import evaluation as ev

REPO = Path(__file__).resolve().parents[1]
TRUE_X0 = {"enc": 62.0, "dec": 55.0}  # the mapping the synthetic labels follow
TRUE_K = {"enc": 0.15, "dec": 0.3}


# --- synthetic CPC1 experiment ----------------------------------------------------------------


def _records(rng: np.random.Generator, scenes: list[str], listeners: list[str], systems: list[str]):
    """Make response records (3 random listeners per scene) and a latent similarity per signal."""
    records, latent = [], {}
    for scene in scenes:
        for listener in rng.choice(listeners, size=3, replace=False):
            system = str(rng.choice(systems))
            signal = f"{scene}_{listener}_{system}"
            latent[signal] = rng.uniform(0.35, 0.85)
            records.append({"signal": signal, "scene": scene, "listener": str(listener), "system": system})
    return records, latent


def _correctness(similarity: np.ndarray, noise_sd: float, rng: np.random.Generator) -> np.ndarray:
    clean = ev.logistic(100 * similarity, TRUE_X0["enc"], TRUE_K["enc"])
    return np.clip(np.round(clean + rng.normal(0, noise_sd, similarity.size)), 0, 100)


def build_experiment(
    root: Path,
    track: str = "closed",
    seed: int = 0,
    n_scenes: tuple[int, int] = (60, 40),
    n_listeners: int = 8,
    n_systems: int = 5,
    label_noise_sd: float = 8.0,
) -> dict:
    """Write CPC1-layout label lists, the dev split list and the 4 similarity files under ``root``.

    ``n_scenes`` = (training scenes, of which every third is dev; test scenes), 3 signals each.
    Labels follow the encoder mapping plus Gaussian noise (``label_noise_sd``, % words); the
    decoder similarity is the encoder one passed through the inverse of the decoder mapping, plus
    noise, so both representations fit the same labels. ``(1621, 807), 27, 10`` gives CPC1's
    sizes (4863 training and 2421 test signals).
    """
    rng = np.random.default_rng(seed)
    suffix = "" if track == "closed" else "_indep"
    listeners = [f"L{i:04d}" for i in range(200, 200 + n_listeners)]
    systems = [f"E{i:03d}" for i in range(1, 1 + n_systems)]
    train_scenes = [f"S{i:05d}" for i in range(10000, 10000 + n_scenes[0])]
    dev_scenes = train_scenes[::3]
    test_scenes = [f"S{i:05d}" for i in range(20000, 20000 + n_scenes[1])]
    out = {}
    for part, scenes in (("train", train_scenes), ("test", test_scenes)):
        records, latent = _records(rng, scenes, listeners, systems)
        s_enc = np.array(list(latent.values()))
        labels = _correctness(s_enc, label_noise_sd, rng)
        for record, label in zip(records, labels, strict=True):
            record["correctness"] = float(label)
        # decoder similarity giving the same clean label under the decoder mapping
        s_dec = (TRUE_X0["dec"] + (100 * s_enc - TRUE_X0["enc"]) * TRUE_K["enc"] / TRUE_K["dec"]) / 100
        s_dec = s_dec + rng.normal(0, 0.02, s_dec.size)  # so that enc and dec results differ
        out[part] = {
            "records": records,
            "enc": dict(zip(latent, s_enc, strict=True)),
            "dec": dict(zip(latent, s_dec, strict=True)),
        }
    meta = root / "clarity_CPC1_data_train" / "metadata"
    meta.mkdir(parents=True)
    (meta / f"CPC1.train{suffix}.json").write_text(json.dumps(out["train"]["records"]))
    labels_dir = root / "test_listener_responses"
    labels_dir.mkdir()
    (labels_dir / f"CPC1.test{suffix}.json").write_text(json.dumps(out["test"]["records"]))
    exp = root / "e032"
    (exp / "data_split").mkdir(parents=True)
    (exp / "data_split" / f"scene_dev_list{suffix}.json").write_text(json.dumps(dev_scenes))
    dev_ids = [r["signal"] for r in out["train"]["records"] if r["scene"] in dev_scenes]
    for rep in ("enc", "dec"):
        dev = {s: float(out["train"][rep][s]) for s in dev_ids}
        (exp / f"dev_{rep}_similarity{suffix}.json").write_text(json.dumps(dev))
        test = {s: float(v) for s, v in out["test"][rep].items()}
        (exp / f"test_{rep}_similarity{suffix}.json").write_text(json.dumps(test))
    return {
        "exp": exp,
        "suffix": suffix,
        "dev_ids": dev_ids,
        "test_records": out["test"]["records"],
    }


def make_cfg(root: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO), version_base=None):
        return compose("config", overrides=[f"path.root={root}", *overrides])


@pytest.fixture(scope="module")
def closed_run(tmp_path_factory):
    """One evaluate.py run on a synthetic closed-track experiment (shared by the output tests)."""
    root = tmp_path_factory.mktemp("cpc1")
    info = build_experiment(root)
    document = evaluate.main(make_cfg(root))
    return root, info, document


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_hand_computed():
    # errors p - y = [0, -1, 1, 2]: RMSE = sqrt(6/4);
    # mean error 0.5, population variance 5/4 -> Std = sqrt(1.25) / 2
    # Pearson: centred p = [-1.5, -.5, .5, 1.5], y = [-1, 1, 0, 0] -> 1 / sqrt(5 * 2)
    # Kendall tau-b: 3 concordant, 2 discordant, 1 pair tied in y -> (3 - 2) / sqrt(6 * 5)
    metrics = ev.compute_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 2.0])
    assert metrics["RMSE"] == pytest.approx(math.sqrt(1.5), rel=1e-12)
    assert metrics["Std"] == pytest.approx(math.sqrt(1.25) / 2, rel=1e-12)
    assert metrics["NCC"] == pytest.approx(1 / math.sqrt(10), rel=1e-12)
    assert metrics["KT"] == pytest.approx(1 / math.sqrt(30), rel=1e-12)
    assert list(metrics) == ["RMSE", "Std", "NCC", "KT"]


def test_metrics_match_scipy_and_numpy():
    rng = np.random.default_rng(1)
    label = np.round(rng.uniform(0, 100, 300) / 10) * 10  # many ties, as in CPC1 labels
    prediction = np.clip(label + rng.normal(0, 20, label.size), 0, 100)
    metrics = ev.compute_metrics(prediction, label)
    assert metrics["NCC"] == pytest.approx(pearsonr(prediction, label)[0], rel=1e-12)
    assert metrics["KT"] == pytest.approx(kendalltau(prediction, label, variant="b")[0], rel=1e-12)
    assert metrics["RMSE"] == pytest.approx(np.sqrt(np.mean((prediction - label) ** 2)), rel=1e-12)
    assert metrics["Std"] == pytest.approx(np.std(prediction - label, ddof=0) / np.sqrt(300), rel=1e-12)


def test_metrics_constant_prediction_gives_nan_not_error():
    metrics = ev.compute_metrics([50.0, 50.0, 50.0], [10.0, 60.0, 90.0])
    assert math.isnan(metrics["NCC"]) and math.isnan(metrics["KT"])
    assert metrics["RMSE"] == pytest.approx(math.sqrt((1600 + 100 + 1600) / 3))


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        ev.compute_metrics([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        ev.compute_metrics([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        ev.compute_metrics([1.0, np.nan], [1.0, 2.0])


def test_group_means_and_table3_view():
    names, means = ev.group_means([1.0, 3.0, 10.0, 20.0], ["L2", "L2", "L1", "L3"])
    assert names == ("L1", "L2", "L3")
    np.testing.assert_array_equal(means, [10.0, 2.0, 20.0])
    prediction = np.array([10.0, 30.0, 50.0, 70.0, 80.0, 20.0])
    label = np.array([0.0, 40.0, 60.0, 60.0, 100.0, 30.0])
    groups = ["a", "a", "b", "b", "c", "c"]
    # per-group means: prediction (20, 60, 50), label (20, 60, 65)
    view = ev.aggregated_metrics(prediction, label, groups)
    expected = ev.compute_metrics([20.0, 60.0, 50.0], [20.0, 60.0, 65.0])
    assert view == {"N": 3, **expected}
    assert view["RMSE"] == pytest.approx(math.sqrt(225 / 3))


def test_docstring_examples():
    result = doctest.testmod(ev)
    assert result.attempted >= 4 and result.failed == 0


# --- logistic mapping -------------------------------------------------------------------------


def test_logistic_is_the_original_formula():
    x = np.linspace(-50, 150, 41)
    np.testing.assert_allclose(ev.logistic(x, 60.0, 0.2), 100 / (1 + np.exp(-0.2 * (x - 60.0))), rtol=1e-13)
    mapping = ev.LogisticMapping(x0=60.0, k=0.2)
    np.testing.assert_allclose(mapping.predict(x / 100), ev.logistic(x, 60.0, 0.2), rtol=1e-13)


def test_fit_recovers_known_parameters_exactly_without_noise():
    similarity = np.linspace(0.2, 0.95, 60)
    correctness = ev.logistic(100 * similarity, 71.5, 0.12)
    mapping = ev.fit_logistic(similarity, correctness)
    assert mapping.x0 == pytest.approx(71.5, rel=1e-6)
    assert mapping.k == pytest.approx(0.12, rel=1e-6)


def test_fit_recovers_known_parameters_with_noise():
    rng = np.random.default_rng(2)
    similarity = rng.uniform(0.3, 0.9, 3000)
    correctness = np.clip(ev.logistic(100 * similarity, 58.0, 0.25) + rng.normal(0, 10, 3000), 0, 100)
    mapping = ev.fit_logistic(similarity, correctness)
    assert mapping.x0 == pytest.approx(58.0, abs=0.5)
    assert mapping.k == pytest.approx(0.25, rel=0.1)


def test_fit_rejects_constant_similarity():
    with pytest.raises(ValueError, match=r"all 5 dev similarities are equal \(0.7\)"):
        ev.fit_logistic([0.7] * 5, [10.0, 20.0, 30.0, 40.0, 50.0])


def test_fit_reports_non_convergence_clearly():
    similarity = np.linspace(0.4, 0.9, 50)
    with pytest.raises(ev.LogisticFitError, match=r"did not converge \(50 dev pairs.*maxfev"):
        ev.fit_logistic(similarity, np.zeros(50))  # all labels 0: k runs off to -inf


def weakly_related_dev_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Like a weak demo decoder: similarities 0.05-0.55, 8-word binomial labels, midpoint at 0.15."""
    rng = np.random.default_rng(seed)
    similarity = rng.uniform(0.05, 0.55, 135)
    p = ev.logistic(100 * similarity, 15.0, 0.06) / 100
    return similarity, 100 * rng.binomial(8, p) / 8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auto_start_converges_where_the_original_start_does_not(seed):
    similarity, correctness = weakly_related_dev_data(seed)
    with pytest.raises(ev.LogisticFitError, match="did not converge"):
        ev.fit_logistic(similarity, correctness)  # (50, 1): a step far from the data
    mapping = ev.fit_logistic(similarity, correctness, initial_guess="auto")
    assert 10 < mapping.x0 < 20 and 0.04 < mapping.k < 0.08  # generated with (15, 0.06)
    assert mapping.initial_guess == ev.data_driven_start(100 * similarity, correctness)


def test_auto_start_matches_the_least_squares_line():
    x = np.array([10.0, 20.0, 30.0, 40.0])
    y = np.array([20.0, 40.0, 60.0, 80.0])  # slope 2 %/unit, 50 % at x = 25
    assert ev.data_driven_start(x, y) == pytest.approx((25.0, 2.0 / 25.0))
    assert ev.data_driven_start(x, y[::-1]) == pytest.approx((25.0, -2.0 / 25.0))
    assert ev.data_driven_start(x, y + 100.0)[0] == 10.0  # crossing outside the data: clipped


def test_where_the_original_start_converges_auto_gives_the_same_fit():
    similarity, correctness = weakly_related_dev_data(0)
    original = ev.fit_logistic(similarity, correctness)
    auto = ev.fit_logistic(similarity, correctness, initial_guess="auto")
    assert (auto.x0, auto.k) == pytest.approx((original.x0, original.k), rel=1e-4)


@pytest.mark.parametrize("bad", ["median", [1.0], [1.0, float("nan")]])
def test_bad_initial_guess_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="initial_guess"):
        ev.fit_logistic([0.1, 0.2, 0.3], [10.0, 50.0, 90.0], initial_guess=bad)


@pytest.mark.parametrize("value", ["'median'", "[1.0]", "[a, 1]"])
def test_bad_fit_initial_guess_setting_is_named(tmp_path, value):
    build_experiment(tmp_path)
    with pytest.raises(ValueError, match="fit_initial_guess must be"):
        evaluate.main(make_cfg(tmp_path, f"fit_initial_guess={value}"))


def test_auto_start_is_recorded_in_results_json(tmp_path):
    build_experiment(tmp_path, seed=5)
    document = evaluate.main(make_cfg(tmp_path, "fit_initial_guess=auto"))
    default = evaluate.main(make_cfg(tmp_path))
    for rep in ("enc", "dec"):
        assert document["details"][rep]["mapping"]["initial_guess"] != [50.0, 1.0]
        assert default["details"][rep]["mapping"]["initial_guess"] == [50.0, 1.0]
        assert document[f"{rep}_results"]["NCC"] == pytest.approx(default[f"{rep}_results"]["NCC"], abs=1e-6)


def test_fit_reports_degenerate_fit_clearly(caplog):
    # similarities 100 times too small: the curve stays flat at the start values (50, 1)
    similarity = np.linspace(0.004, 0.009, 50)
    correctness = np.linspace(0, 100, 50)
    with pytest.raises(ev.LogisticFitError, match=r"degenerate.*\(50, 1\)"):
        ev.fit_logistic(similarity, correctness)
    # the original's behaviour on request: kept, with a warning
    with caplog.at_level(logging.WARNING, logger="e032.evaluation"):
        mapping = ev.fit_logistic(similarity, correctness, allow_degenerate=True)
    assert (mapping.x0, mapping.k) == (50.0, 1.0)
    assert "kept because allow_degenerate_fit is set" in caplog.text


def test_fit_needs_three_points():
    with pytest.raises(ValueError, match="at least 3"):
        ev.fit_logistic([0.1, 0.2], [10.0, 20.0])


# --- inputs and pairing -----------------------------------------------------------------------


def _labels(tmp_path: Path, signals: list[str], name: str = "CPC1.test.json") -> ev.Labels:
    path = tmp_path / name
    path.write_text(json.dumps([{"signal": s, "correctness": 50.0} for s in signals]))
    return ev.read_labels(path)


def test_read_labels_parses_ids_and_rejects_bad_records(tmp_path):
    labels = _labels(tmp_path, ["S00001_L0001_E001"])
    assert labels.listener == {"S00001_L0001_E001": "L0001"}
    assert labels.system == {"S00001_L0001_E001": "E001"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"signal": "S1_L1_E1", "correctness": 120}]))
    with pytest.raises(ValueError, match=r"bad.json, record 0 \(S1_L1_E1\): 'correctness' must be"):
        ev.read_labels(bad)
    bad.write_text(
        json.dumps([{"signal": "S1_L1_E1", "correctness": 10}, {"signal": "S1_L1_E1", "correctness": 20}])
    )
    with pytest.raises(ValueError, match="S1_L1_E1 appears twice"):
        ev.read_labels(bad)


def test_read_similarities_rejects_non_numbers(tmp_path):
    path = tmp_path / "test_enc_similarity.json"
    path.write_text(json.dumps({"S1_L1_E1": 0.5, "S2_L1_E1": "x"}))
    with pytest.raises(ValueError, match=r"test_enc_similarity.json.*1 are not \(e.g. S2_L1_E1"):
        ev.read_similarities(path)


@pytest.mark.parametrize("value", [1.5, -1.01, 73.0])
def test_read_similarities_rejects_values_outside_the_cosine_range(tmp_path, value):
    path = tmp_path / "test_enc_similarity.json"
    path.write_text(json.dumps({"S1_L1_E1": 0.5, "S2_L1_E1": value, "S3_L1_E1": 1.0000001}))
    with pytest.raises(
        ValueError,
        match=rf"test_enc_similarity.json: similarities are cosines in "
        rf"\[-1, 1\] \(raw, not x 100\); 1 are not \(e.g. S2_L1_E1 -> {value}\)",
    ):
        ev.read_similarities(path)
    path.write_text(json.dumps({"S1_L1_E1": -1.0, "S3_L1_E1": 1.0000001}))  # float32 rounding
    assert ev.read_similarities(path) == {"S1_L1_E1": -1.0, "S3_L1_E1": 1.0000001}


def test_prediction_without_label_is_reported_by_id(tmp_path):
    labels = _labels(tmp_path, ["S1_L1_E1"])
    similarities = {"S1_L1_E1": 0.5, "S2_L1_E1": 0.6, "S3_L1_E1": 0.7}
    with pytest.raises(
        ValueError, match=r"2 signal\(s\) in sim.json have no label in .*: S2_L1_E1, S3_L1_E1$"
    ):
        ev.pair_with_labels(similarities, labels, "sim.json")


def test_label_without_prediction_is_reported_by_id_with_count(tmp_path):
    signals = [f"S{i:05d}_L0001_E001" for i in range(25)]
    labels = _labels(tmp_path, signals)
    with pytest.raises(ValueError) as err:
        ev.pair_with_labels({signals[0]: 0.5}, labels, "sim.json", frozenset(signals), "the test list")
    message = str(err.value)
    assert "24 labelled signal(s) have no similarity in sim.json" in message
    assert "S00001_L0001_E001" in message and "S00010_L0001_E001" in message
    assert "S00011_L0001_E001" not in message and "... and 14 more" in message


def test_pairing_keeps_similarity_order(tmp_path):
    labels = ev.Labels(tmp_path, {"a": 10.0, "b": 20.0}, {}, {}, {})
    paired = ev.pair_with_labels({"b": 0.2, "a": 0.1}, labels, "sim.json", {"a", "b"})
    assert paired.signal_ids == ("b", "a")
    np.testing.assert_array_equal(paired.similarity, [0.2, 0.1])
    np.testing.assert_array_equal(paired.correctness, [20.0, 10.0])


# --- the script -------------------------------------------------------------------------------


def test_outputs_written_and_well_formed(closed_run):
    root, info, document = closed_run
    exp = info["exp"]
    saved = json.loads((exp / "results.json").read_text())
    assert saved == document
    assert list(saved)[:2] == ["enc_results", "dec_results"]
    for rep in ("enc", "dec"):
        assert set(saved[f"{rep}_results"]) == {"RMSE", "Std", "NCC", "KT"}
        details = saved["details"][rep]
        assert details["n_dev"] == len(info["dev_ids"]) and details["n_test"] == len(info["test_records"])
        assert details["per_listener"]["N"] == len({r["listener"] for r in info["test_records"]})
        assert details["per_system"]["N"] == len({r["system"] for r in info["test_records"]})
    assert saved["details"]["track"] == "closed"
    assert (exp / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_agree_with_submission_csvs_and_labels(closed_run):
    root, info, document = closed_run
    labels = {r["signal"]: r["correctness"] for r in info["test_records"]}
    for rep in ("enc", "dec"):
        with open(info["exp"] / "submission" / f"test_{rep}_predictions.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["signal_ID", "intelligibility_score"]
        scores = {s: float(v) for s, v in rows[1:]}
        assert set(scores) == set(labels)
        prediction = np.array([scores[s] for s in labels])
        label = np.array(list(labels.values()))
        expected = ev.compute_metrics(prediction, label)
        assert document[f"{rep}_results"] == pytest.approx(expected, rel=1e-12)
        dev_rows = (info["exp"] / "submission" / f"dev_{rep}_predictions.csv").read_text().splitlines()
        assert [row.split(",")[0] for row in dev_rows[1:]] == info["dev_ids"]


def test_fitted_mapping_matches_the_synthetic_truth(closed_run):
    _, _, document = closed_run
    for rep in ("enc", "dec"):
        mapping = document["details"][rep]["mapping"]
        assert mapping["x0"] == pytest.approx(TRUE_X0[rep], abs=2.0)
        assert mapping["k"] == pytest.approx(TRUE_K[rep], rel=0.25)
        assert document[f"{rep}_results"]["NCC"] > 0.8


def test_rerun_gives_identical_files_and_prints_table(closed_run, capsys):
    root, info, _ = closed_run
    exp = info["exp"]
    names = ["results.json", "results.png"] + [
        f"submission/{p}_{r}_predictions.csv" for p in ("dev", "test") for r in ("enc", "dec")
    ]
    before = {n: (exp / n).read_bytes() for n in names}
    evaluate.main(make_cfg(root))
    assert {n: (exp / n).read_bytes() for n in names} == before
    out = capsys.readouterr().out
    assert "test/listener" in out and "test/system" in out and "x0 = " in out and "k = " in out
    assert f"{len(info['test_records']):>6d}" in out


def test_command_line_entry_point(tmp_path):
    build_experiment(tmp_path, seed=4)
    run = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), f"path.root={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "E032 evaluation, closed track" in run.stdout
    saved = json.loads((tmp_path / "e032" / "results.json").read_text())
    assert saved["enc_results"]["NCC"] > 0.8


def test_open_track_writes_its_own_files(tmp_path):
    info = build_experiment(tmp_path, track="open", seed=3)
    evaluate.main(make_cfg(tmp_path, "cpc1_track=open"))
    exp = info["exp"]
    assert (exp / "results_indep.json").is_file() and (exp / "results_indep.png").is_file()
    assert (exp / "submission" / "test_dec_predictions_indep.csv").is_file()
    assert not (exp / "results.json").exists()


def test_without_dev_split_list_dev_signals_only_need_labels(tmp_path, caplog):
    info = build_experiment(tmp_path)
    (info["exp"] / "data_split" / "scene_dev_list.json").unlink()
    path = info["exp"] / "dev_enc_similarity.json"
    similarities = json.loads(path.read_text())
    del similarities[info["dev_ids"][0]]  # incomplete dev set: accepted without the split list
    path.write_text(json.dumps(similarities))
    document = evaluate.main(make_cfg(tmp_path))
    assert document["details"]["enc"]["n_dev"] == len(info["dev_ids"]) - 1
    assert document["details"]["dec"]["n_dev"] == len(info["dev_ids"])
    assert "no dev split list" in caplog.text


def test_missing_similarity_files_are_named(tmp_path):
    info = build_experiment(tmp_path)
    for part in ("dev", "test"):
        (info["exp"] / f"{part}_dec_similarity.json").unlink()
    with pytest.raises(FileNotFoundError) as err:
        evaluate.main(make_cfg(tmp_path))
    message = str(err.value)
    assert "2 of the 4 similarity files are missing" in message
    assert f"dev/dec: {info['exp'] / 'dev_dec_similarity.json'}" in message
    assert f"test/dec: {info['exp'] / 'test_dec_similarity.json'}" in message
    assert "found: dev/enc, test/enc" in message


def test_script_reports_unmatched_test_signal(tmp_path):
    info = build_experiment(tmp_path)
    path = info["exp"] / "test_enc_similarity.json"
    similarities = json.loads(path.read_text())
    dropped = info["test_records"][5]["signal"]
    del similarities[dropped]
    similarities["S99999_L0001_E001"] = 0.5
    path.write_text(json.dumps(similarities))
    with pytest.raises(ValueError) as err:
        evaluate.main(make_cfg(tmp_path))
    message = str(err.value)
    assert "1 signal(s) in" in message and "have no label in" in message and "S99999_L0001_E001" in message
    assert f"1 labelled signal(s) have no similarity in {path}: {dropped}" in message


def test_script_reports_dev_signal_outside_dev_split(tmp_path):
    info = build_experiment(tmp_path)
    path = info["exp"] / "dev_dec_similarity.json"
    similarities = json.loads(path.read_text())
    train_only = "S10001_" + next(
        r["signal"][7:]
        for r in json.loads(
            (tmp_path / "clarity_CPC1_data_train" / "metadata" / "CPC1.train.json").read_text()
        )
        if r["scene"] == "S10001"
    )
    similarities[train_only] = 0.5
    path.write_text(json.dumps(similarities))
    with pytest.raises(
        ValueError, match=rf"1 signal\(s\) in .* are not in the dev scenes of .*: {train_only}"
    ):
        evaluate.main(make_cfg(tmp_path))


def test_script_reports_constant_similarity(tmp_path):
    info = build_experiment(tmp_path)
    path = info["exp"] / "dev_enc_similarity.json"
    path.write_text(json.dumps({s: 0.25 for s in json.loads(path.read_text())}))
    with pytest.raises(ValueError, match=r"dev similarities are equal \(0.25\)"):
        evaluate.main(make_cfg(tmp_path))
