#!/usr/bin/env bash
# Issue 28, what the batches do: the 3,000-step run of conditional_type_weight.sh continued 300 steps at
# its final learning rate (--resume with max_steps 3300 on a copy of its checkpoint), once with the
# length-sorted batches it was trained on (data.length_bucket 50), once with uniform batches (1), and
# once with sorted batches and a clip that seldom fires (train.clip 10);
# conditional generation per process at guidance 1; and the gradient norms of length-sorted batches.
#   bash benchmarks/conditional_batching.sh    # 2 cores: about 35 min
# Needs runs/more/steps3000_seed0 (conditional_type_weight.sh). Continuations that exist are kept.
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
OUT=benchmarks/results
source "$(dirname "$0")/real_run_lib.sh"

continue_and_measure() {  # name extra-arguments
  local name=$1 folder=$RUN/cont_$1
  if [ ! -f "$folder/config.json" ]; then
    rm -rf "$folder"; mkdir -p "$folder"; cp -r "$RUN/steps3000_seed0/checkpoint" "$RUN/steps3000_seed0/run_info.json" "$folder/"
  fi
  pretrain_cpu "cont_$name" 0 --train.max_steps=3300 --train.eval_every=300 $2 --resume
  measure_generation "$folder" "steps3000_then300_${name}_seed0" 1
}
continue_and_measure bucket1 --data.length_bucket=1 &
continue_and_measure bucket50 --data.length_bucket=50 &
wait
continue_and_measure clip10 --train.clip=10
OMP_NUM_THREADS=1 python benchmarks/batch_gradient_norms.py --backbone "$RUN/steps3000_seed0" --store "$RUN/tokens.h5" \
  --out "$OUT/batch_gradient_norms_steps3000_seed0.json"
log "done"
