#!/usr/bin/env bash
# Re-create the demo's pre-trained stand-in ASR (`make standin`; docs/standin_asr.md).
#   bash demo/standin.sh [BUILD] [SHIP]     BUILD defaults to standin_build, SHIP to demo/standin_asr
# Each step resumes where a killed run stopped. The stand-in pre-trains on STANDIN_PROCS processes
# (DDP; 2 on a 2-core CPU machine). The number of processes sets the effective batch, so it changes the
# model: the shipped one was made with 2. STANDIN_TRAIN_ARGS passes train_asr.py options, e.g.
# STANDIN_PROCS=1 STANDIN_TRAIN_ARGS="--device=cuda --batch_size=16" on one GPU (a different model).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-standin_build}
SHIP=${2:-demo/standin_asr}
PY=${PYTHON:-python3}
PROCS=${STANDIN_PROCS:-2}
read -r -a TRAIN_ARGS <<< "${STANDIN_TRAIN_ARGS:-}"
mkdir -p "$BUILD"
TIMES="$BUILD/stage_times.txt"   # one line per run of a step; the card sums them

stage() {  # stage NAME COMMAND...: run a step, print and record its wall time
    local name=$1; shift
    echo "=== [$name] $*"
    local start=$SECONDS
    "$@"
    printf '%s %d\n' "$name" "$((SECONDS - start))" | tee -a "$TIMES"
}

stage corpus "$PY" demo/make_standin.py corpus --out "$BUILD"
stage train  "$PY" -m torch.distributed.run --standalone --nproc_per_node="$PROCS" \
                 demo/make_standin.py train --out "$BUILD" "${TRAIN_ARGS[@]}"
stage card   "$PY" demo/make_standin.py card --out "$BUILD" --ship "$SHIP"
