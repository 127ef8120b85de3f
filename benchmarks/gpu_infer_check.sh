#!/usr/bin/env bash
# One GPU check of E032 inference (at most 8 min on one H100/H200; docs/asr_infer.md, "Measured"):
#   1. exactness: tests/test_batched_search.py on the device (each utterance of a padded batched search
#      as alone, for every ctc_scorer/decoder_cache setting);
#   2. speed: benchmarks/asr_infer_speed.py with the full-size model (transformer_cpc1.yaml sizes, random
#      weights, EOS bias calibrated so searches end after ~60 % of the frames, like a trained model's) on
#      400 synthetic signals of CPC1 lengths: signals/s at batch 32 and auto, batch 1 / the other
#      ctc_scorer x decoder_cache settings at batch 32 / the previous path on 12 signals, the original
#      arithmetic on 2, and the extrapolated CPC1 dev + test time (~3,900 signals) of each.
# Each part has a timeout (120 s, 390 s) so that the script ends within 8 min; rows print as they come.
# Usage:
#   bash benchmarks/gpu_infer_check.sh [OUT_DIR]             # on the GPU machine (cuda)
#   DEVICE=cpu TINY=1 bash benchmarks/gpu_infer_check.sh     # dry run of the script on a CPU, tiny sizes
# Writes OUT_DIR/exactness.txt and OUT_DIR/speed.json (OUT_DIR defaults to $OUT, else ./gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT_DIR=${1:-${OUT:-gpu_check}}
mkdir -p "$OUT_DIR"
if [[ "${TINY:-0}" == 1 ]]; then  # CPU dry run: random weights at the demo's sizes, a few signals, beam 4
    SPEED_ARGS=(--full-size --random-sizes demo/asr_demo_overrides.yaml --synthetic 6 --few 2
                --original-signals 1 --batch-sizes 1,4,auto --arithmetic-at 4 --beam 4)
else
    SPEED_ARGS=(--full-size --synthetic 400 --few 12 --original-signals 2 --batch-sizes 1,32,auto
                --arithmetic-at 32)
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')" | tee "$OUT_DIR/exactness.txt"
status=0
E032_TEST_DEVICE=$DEVICE timeout 120 "$PY" -m pytest tests/test_batched_search.py -q -p no:cacheprovider \
    2>&1 | tee -a "$OUT_DIR/exactness.txt" || { status=$?; echo "EXACTNESS TESTS FAILED (rc $status)"; }
timeout 390 "$PY" benchmarks/asr_infer_speed.py --device "$DEVICE" "${SPEED_ARGS[@]}" \
    --out "$OUT_DIR/speed.json" 2>&1 | grep -v Warning | tee "$OUT_DIR/speed.txt" \
    || { status=$?; echo "SPEED BENCHMARK FAILED OR TIMED OUT (rc $status; rows so far in speed.txt)"; }
exit $status
