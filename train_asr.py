#!/usr/bin/env python3
"""Fine-tune the E032 transformer ASR on MSBG-processed CPC1 speech (SpeechBrain 1.x).

Usage (SpeechBrain style, like the original recipe; every yaml key can be overridden)::

    python train_asr.py transformer_cpc1.yaml --data_folder=<exp>/cpc1_asr_data --output_folder=<exp>/asr \
        --pretrained_save_folder=<LibriSpeech save/> --tokenizer_file=<tokenizer.ckpt> [--device=cpu]
    torchrun --nproc_per_node=4 train_asr.py transformer_cpc1.yaml ...        # DDP (gloo on CPU)
    python train_asr.py transformer_cpc1.yaml --overrides_file=demo/asr_demo_overrides.yaml ...

``--overrides_file`` (ours) applies a yaml of key overrides (e.g. the demo's small sizes) before the
command-line overrides. Re-running the same command after a kill resumes from the last checkpoint.
"""

from __future__ import annotations

from e032.asr.fine_tuning import main, parse_command_line  # noqa: F401  (the script's API)

if __name__ == "__main__":
    main()
