"""End to end on the tiny CPC2 and CPC3 layouts: the four scripts, as tests/test_end_to_end.py runs
them on CPC1, with a tiny ASR; running everything again changes nothing.

CPC2: the three partitions (``train.N`` -> ``eval.N``, one ASR each) and the pooled evaluation;
CPC3: ``train`` -> ``dev``. The layouts come from the mini generator (``--layout cpc2|cpc3`` of the
``tiny`` preset), whose CEC1 and CEC2 subsets share scene IDs with different audio.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from e032.minicpc1.layouts import generate_layout
from e032.minicpc1.presets import PRESETS
from tests.test_datasets import TTS_MISSING
from tests.test_end_to_end import ASR_DATA, TINY_SIZES, infer_tiny, run, train_tiny
from tests.test_end_to_end import tree_digest as cpc1_tree_digest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(TTS_MISSING), reason=f"needs the TTS programs {TTS_MISSING}"),
]


@pytest.fixture(scope="module")
def tiny_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The ``tiny`` preset in the CPC2 and CPC3 layouts (generated once per module)."""
    roots = {}
    for layout in ("cpc2", "cpc3"):
        roots[layout] = tmp_path_factory.mktemp(f"tiny_{layout}")
        generate_layout(PRESETS["tiny"], roots[layout], layout)
    return roots


@pytest.fixture()
def tiny_asr(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny pretrained checkpoint and the yaml of its sizes."""
    shutil.copytree(ASR_DATA / "tiny_ckpt_05x", tmp_path / "pretrained")
    overrides_file = tmp_path / "tiny_sizes.yaml"
    overrides_file.write_text(json.dumps(TINY_SIZES))  # JSON is YAML
    return tmp_path / "pretrained" / "save", overrides_file


def run_stages_1_to_3(args: list[str], suffix: str, exp: Path, asr: tuple[Path, Path]) -> None:
    """prepare_data.py, train_asr.py and infer.py of one run (``suffix``: ``_cpc2_p1``, ...)."""
    pretrained, overrides_file = asr
    run("prepare_data.py", *args, "num_workers=1", "resampler=soxr_hq")
    train_tiny(exp / f"asr_data{suffix}", exp / f"asr{suffix}", pretrained, overrides_file)
    infer_tiny(args, overrides_file)


def tree_digest(exp: Path) -> dict[str, str]:
    """:func:`tests.test_end_to_end.tree_digest` without what SpeechBrain rewrites on every run
    in the ``asr<suffix>`` folders (logs and hyperparams.yaml with the run's time)."""
    rewritten = {"train_log.txt", "log.txt", "hyperparams.yaml"}
    return {
        path: digest
        for path, digest in cpc1_tree_digest(exp).items()
        if not (path.split("/")[0].startswith("asr_") and Path(path).name in rewritten)
    }


def csv_ids(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["ID"] for row in csv.DictReader(f)]


def cpc2_recipe(root: Path, exp: Path, asr: tuple[Path, Path]) -> str:
    common = ["dataset=cpc2", f"path.root={root}", f"path.exp_folder={exp}", "progress=false"]
    for n in (1, 2, 3):
        run_stages_1_to_3([*common, f"partition={n}"], f"_cpc2_p{n}", exp, asr)
    return run("evaluate.py", *common, "partition=all", "allow_degenerate_fit=true")


def test_four_scripts_on_tiny_cpc2(tiny_layouts, tiny_asr, tmp_path):
    root, exp = tiny_layouts["cpc2"], tmp_path / "exp"
    printed = cpc2_recipe(root, exp, tiny_asr)
    meta = root / "clarity_CPC2_data" / "clarity_data" / "metadata"
    labels = {}
    for n in (1, 2, 3):
        labels |= {
            f"CEC2_{r['signal']}": r["correctness"]
            for r in json.loads((root / "labels" / f"CEC2.test.{n}.json").read_text())
        }
        eval_ids = {f"CEC2_{r['signal']}" for r in json.loads((meta / f"CEC2.test.{n}.json").read_text())}
        train_ids = {
            f"{c}_{r['signal']}"
            for c in ("CEC1", "CEC2")
            for r in json.loads((meta / f"{c}.train.{n}.json").read_text())
        }
        data = exp / f"asr_data_cpc2_p{n}"
        assert set(csv_ids(data / "left_test_msbg.csv")) == eval_ids
        assert (
            set(csv_ids(data / "left_train_msbg.csv")) | set(csv_ids(data / "left_dev_msbg.csv")) == train_ids
        )
        for rep in ("enc", "dec"):
            sims = json.loads((exp / f"test_{rep}_similarity_cpc2_p{n}.json").read_text())
            assert set(sims) == eval_ids and all(-1 <= v <= 1 for v in sims.values())
        results = json.loads((exp / f"results_cpc2_p{n}.json").read_text())
        assert results["details"]["dec"]["n_test"] == len(eval_ids)
        with open(exp / "submission" / "dec" / f"CPC2_E032.{n}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["signal_ID", "intelligibility_score"]
        assert {f"CEC2_{r[0]}" for r in rows[1:]} == eval_ids
    pooled = json.loads((exp / "results_cpc2_pooled.json").read_text())["pooled"]
    assert pooled["dec"]["N"] == len(labels) and 0 <= pooled["dec"]["RMSE"] <= 100
    assert "pooled eval.1-3, dec" in printed
    # the MSBG outputs of the training signals are shared by the partitions
    assert len(list((exp / "msbg" / "cpc2" / "train").glob("*_HL-output.wav"))) == len(
        {
            f"{c}_{r['signal']}"
            for c in ("CEC1", "CEC2")
            for n in (1, 2, 3)
            for r in json.loads((meta / f"{c}.train.{n}.json").read_text())
        }
    )

    # a re-run changes nothing: partition 1 again (its MSBG outputs are shared with 2 and 3) and the
    # pooled evaluation (the whole recipe again is the CPC3 test's; here it would cost ~1 min)
    before = tree_digest(exp)
    common = ["dataset=cpc2", f"path.root={root}", f"path.exp_folder={exp}", "progress=false"]
    run_stages_1_to_3([*common, "partition=1"], "_cpc2_p1", exp, tiny_asr)
    run("evaluate.py", *common, "partition=all", "allow_degenerate_fit=true")
    assert tree_digest(exp) == before


def cpc3_recipe(root: Path, exp: Path, asr: tuple[Path, Path]) -> str:
    args = ["dataset=cpc3", "split=dev", f"path.root={root}", f"path.exp_folder={exp}", "progress=false"]
    run_stages_1_to_3(args, "_cpc3_dev", exp, asr)
    return run("evaluate.py", *args, "allow_degenerate_fit=true")


def test_four_scripts_on_tiny_cpc3(tiny_layouts, tiny_asr, tmp_path):
    root, exp = tiny_layouts["cpc3"], tmp_path / "exp"
    printed = cpc3_recipe(root, exp, tiny_asr)
    data = root / "clarity_CPC3_data" / "clarity_data"
    dev = {r["signal"]: r for r in json.loads((root / "labels" / "CPC3.dev.json").read_text())}
    train = json.loads((data / "metadata" / "CPC3.train.json").read_text())
    asr_data = exp / "asr_data_cpc3_dev"
    assert set(csv_ids(asr_data / "left_test_msbg.csv")) == set(dev)
    assert set(csv_ids(asr_data / "left_train_msbg.csv")) | set(csv_ids(asr_data / "left_dev_msbg.csv")) == {
        r["signal"] for r in train
    }
    # one 16 kHz reference per (subset, scene) in training, per signal in dev
    refs = {p.name for p in (asr_data / "train_cpc3_dev_left_ref").iterdir()}
    assert refs == {"_".join(r["signal"].split("_")[0:3:2]) + ".wav" for r in train}
    assert {p.stem for p in (asr_data / "dev_cpc3_dev_left_ref").iterdir()} == {f"CEC3_{s}" for s in dev}
    results = json.loads((exp / "results_cpc3_dev.json").read_text())
    assert results["details"]["dec"]["n_test"] == len(dev)
    assert results["details"]["dec"]["per_listener"]["N"] == 1  # listeners are hidden
    with open(exp / "submission" / "dec" / "CPC3_E032.dev.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert {r[0] for r in rows} == set(dev)  # the EvalAI file has no header
    assert "RMSE" in printed

    before = tree_digest(exp)
    cpc3_recipe(root, exp, tiny_asr)
    assert tree_digest(exp) == before
