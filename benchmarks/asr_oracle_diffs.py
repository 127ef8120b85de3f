"""Largest differences between e032.asr and the original E032 code on the tiny oracle (docs/asr_infer.md).

    python benchmarks/asr_oracle_diffs.py

Prints, for our search and for the original's arithmetic (``ctc_scorer="reference"``, no decoder
cache), how many of the 12 searches (6 inputs x 2 step limits) give exactly the oracle's hypothesis,
step count and slot-0 prefix, and the max abs difference of every stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from e032.asr.model import load_asr  # noqa: E402

DATA = REPO / "tests" / "data" / "asr_reference"
TINY = {
    "d_model": 32,
    "nhead": 4,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "d_ffn": 64,
    "cnn_channels": [8, 16, 16],
    "transformer_input_size": 320,
    "output_neurons": 100,
}
NAMES = ["in0_A_left_ref", "in1_A_left_proc", "in2_A_right_ref", "in3_A_right_proc", "in4_B", "in5_C"]


def main() -> None:
    """Run both search implementations against the oracle and print the differences."""
    torch.set_num_threads(1)
    asr = load_asr(DATA / "tiny_ckpt" / "save", overrides=TINY, device="cpu")
    for scorer, cache in (("fast", True), ("reference", False)):
        asr.searcher.ctc_scorer, asr.searcher.decoder_cache = scorer, cache
        diffs: dict[str, float] = {}
        exact = total = 0
        for sub, ratio in (("", 1.0), ("extra_max_ratio", 0.3)):
            asr.searcher.max_decode_ratio = ratio
            for name in NAMES:
                oracle = np.load(DATA / "oracle" / sub / f"{name}.npz")
                stages = asr.stages(np.load(DATA / "oracle" / f"{name}.npz")["wav"])
                if not sub:
                    for key in ("fbank", "feats_norm", "cnn_out", "enc_out"):
                        diffs[key] = max(
                            diffs.get(key, 0.0), float(np.abs(stages[key].numpy() - oracle[key]).max())
                        )
                result = asr.search(stages["enc_out"])
                exact += int(
                    result.hyps[0] == oracle["hyp"].tolist()
                    and result.n_steps[0] == int(oracle["n_decode_steps"])
                    and result.dec_input_tokens[0].tolist() == oracle["dec_input_tokens"].tolist()
                )
                total += 1
                for key, ours in (
                    ("dec_out", result.dec_out[0].numpy()),
                    ("topk_scores", result.topk_scores[0].numpy()),
                    ("hyp_token_probs", np.exp(result.hyp_log_probs[0].numpy())),
                ):
                    diffs[key] = max(diffs.get(key, 0.0), float(np.abs(ours - oracle[key]).max()))
        print(
            f"ctc_scorer={scorer} decoder_cache={cache}: exact searches {exact}/{total}; max abs diff "
            + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
        )


if __name__ == "__main__":
    main()
