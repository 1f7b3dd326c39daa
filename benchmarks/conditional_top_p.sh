#!/usr/bin/env bash
# Issue 28, truncated sampling: the uniform-batch backbones of conditional_uniform_batches.sh (seeds 0 and 1)
# sampled with each object type's codes drawn from its nucleus (sample.py --top-p), the type itself as the
# model says, at guidance 1, against the same held-out store and references.
#   bash benchmarks/conditional_top_p.sh    # 2 cores: about 20 min (TOP_P="0.95" for one setting)
# Needs runs/anom/{tokenizer,test_tokens.h5} and the backbones RUN/uniform_batches_seed{0,1}.
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
source "$(dirname "$0")/real_run_lib.sh"

measure_seed() {  # seed
  local p
  for p in ${TOP_P:-0.95 0.9 0.98}; do measure_generation "$RUN/uniform_batches_seed$1" "uniform_batches_seed$1" 1 "$p"; done
}
measure_seed 0 &
measure_seed 1 &
wait
log "done"
