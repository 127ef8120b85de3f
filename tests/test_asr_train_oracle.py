"""Our fine-tuning against the training-step oracle of the original code on SpeechBrain 0.5.9.

``benchmarks/asr_train_oracle.py`` trains ``ASRBrain`` (the modules of ``transformer_cpc1.yaml``) on the
oracle's batch and compares losses, learning rates, gradient norms, gradients, parameters and
features with the oracle README's tolerances. The bundled trimmed copy (``tests/data/
asr_train_reference``) always runs; the full ``../shared/asr_train_reference`` runs when present.
Flipping any of the five 0.5.9 switches to SpeechBrain 1.1.2 must make the check fail by about the
effect the oracle measured (its README §7).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from e032.asr.train_oracle import TOLERANCES, all_within, check_oracle, run_names

REPO = Path(__file__).resolve().parents[1]
ORACLE = REPO / "tests" / "data" / "asr_train_reference"
SHARED_ORACLE = REPO / ".." / "shared" / "asr_train_reference"
CHECKPOINT = REPO / "tests" / "data" / "train_asr" / "tiny_ckpt_05x" / "save"
YAML = REPO / "transformer_cpc1.yaml"


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "asr_train_oracle", REPO / "benchmarks" / "asr_train_oracle.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def deviations(results: dict, run: str) -> dict[str, float]:
    return {d.quantity: d.deviation for d in results[run]}


def test_benchmark_passes_on_the_bundled_oracle(capsys):
    assert run_names(ORACLE) == ["main", "frozen_norm", "carry_over"]
    assert load_benchmark().main(["--oracle", str(ORACLE), "--checkpoint", str(CHECKPOINT)]) == 0
    table = capsys.readouterr().out
    assert "| losses | 1e-04 abs. |" in table and "all within tolerance" in table
    assert table.count(" FAIL") == 0 and "| quantity | tolerance | main | frozen_norm | carry_over |" in table


@pytest.mark.skipif(
    not SHARED_ORACLE.is_dir(), reason="full oracle ../shared/asr_train_reference not present"
)
def test_training_matches_the_full_shared_oracle():
    results = check_oracle(SHARED_ORACLE, CHECKPOINT, YAML)
    assert set(results) == {"main", "frozen_norm", "carry_over"}
    assert all_within(results), results
    assert deviations(results, "main")["gradients"] <= TOLERANCES["gradients"]  # all 4 updates stored there


# switch, run, quantity, (low, high): the oracle's effect (README §7) brackets what flipping must give
FLIPS = [
    ("fbank_floor=utterance", "main", "features", (1.0, 20.0)),  # fbank differs by up to 42 dB
    ("fbank_floor=utterance", "main", "gradients", (0.2, 1.0)),  # README: grad rel. step 1 = 0.43
    ("decoder_memory_mask=true", "main", "losses", (1e-3, 0.2)),  # README: max |dloss| 0.030
    ("ctc_lengths=round", "main", "losses", (0.5, 1.5)),  # README: dloss_ctc at micro-batch 1 = +0.900
    ("normalizer_update=sb1", "main", "features", (0.5, 20.0)),  # README: feats differ by up to 1.8
    ("carry_over_gradients=false", "carry_over", "grad norms", (0.2, 0.6)),  # 3 vs 2 micro-batches: ~1.5x
]


@pytest.mark.parametrize("switch,run,quantity,bounds", FLIPS, ids=[f[0] for f in FLIPS])
def test_each_speechbrain_1_switch_fails_the_oracle_by_its_effect(switch, run, quantity, bounds):
    key, value = load_benchmark().parse_switch(switch)
    results = check_oracle(ORACLE, CHECKPOINT, YAML, runs=[run], switches={key: value})
    assert not all_within(results)
    low, high = bounds
    assert low <= deviations(results, run)[quantity] <= high


def test_frozen_normaliser_run_does_not_see_the_update_rule():
    """In the real fine-tuning (epoch >= 4) the normaliser is frozen: the update rule changes no number;
    only its call counter differs (1.1.2 counts frames, and only while updating)."""
    results = check_oracle(
        ORACLE, CHECKPOINT, YAML, runs=["frozen_norm"], switches={"normalizer_update": "sb1"}
    )
    failing = {d.quantity for d in results["frozen_norm"] if not d.within}
    assert failing == {"normaliser count"}
