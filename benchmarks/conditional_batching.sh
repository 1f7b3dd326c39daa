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
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
source "$(dirname "$0")/real_run_lib.sh"
files() { for p in $SM; do echo -n "$1/${p}_s$2.h5 "; done; }

continue_and_measure() {  # name extra-arguments
  local name=$1 folder=$RUN/cont_$1
  if [ ! -f "$folder/config.json" ]; then
    log "continue: $name"
    rm -rf "$folder"; mkdir -p "$folder"; cp -r "$RUN/steps3000_seed0/checkpoint" "$RUN/steps3000_seed0/run_info.json" "$folder/"
    OMP_NUM_THREADS=1 python -m backbone.pretrain --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" \
      --train.seed=0 --train.max_steps=3300 --train.eval_every=300 $2 --out="$folder" --resume \
      --quiet > "$RUN/pretrain_cont_$name.log" 2>&1
  fi
  OMP_NUM_THREADS=1 python benchmarks/conditional_generation.py --backbone "$folder" --tokenizer runs/anom/tokenizer \
    --store runs/anom/test_tokens.h5 --real $(files "$ANOM" 1) --events 5000 --guidance 1 \
    --out "$OUT/conditional_generation_steps3000_then300_${name}_seed0_guidance1.json" > "$RUN/conditional_cont_$name.log" 2>&1
}
continue_and_measure bucket1 --data.length_bucket=1 &
continue_and_measure bucket50 --data.length_bucket=50 &
wait
continue_and_measure clip10 --train.clip=10
OMP_NUM_THREADS=1 python benchmarks/batch_gradient_norms.py --backbone "$RUN/steps3000_seed0" --store "$RUN/tokens.h5" \
  --out "$OUT/batch_gradient_norms_steps3000_seed0.json"
log "done"
