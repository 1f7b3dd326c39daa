#!/usr/bin/env bash
# Issue 28, is the first code's leaked tail a matter of width? The uniform-batch recipe of
# conditional_uniform_batches.sh (seed 0, the same 242,000 events) at n_embd 192 with 6 heads (head size 32,
# as at 128 with 4) instead of 128, measured as the 128-wide run: conditional generation per process with
# each object type's full distribution and its 0.95 nucleus, and generation_drift.py on ttbar.
#   bash benchmarks/conditional_width.sh    # 2 cores: about 35 min of training (2 threads), 15 of measuring
# Needs runs/anom/{tokenizer,test_tokens.h5} and runs/more/tokens.h5 (conditional_more_data.sh).
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
source "$(dirname "$0")/real_run_lib.sh"

name=wide192_seed0
THREADS=2 pretrain_cpu "$name" 0 --model.n_embd=192 --model.n_head=6 --model.feature_logits=false \
  --data.multiplicity_token=false
measure_generation "$RUN/$name" "$name" 1 1 &
measure_generation "$RUN/$name" "$name" 1 0.95 &
wait
log "drift $name"
OMP_NUM_THREADS=2 python benchmarks/generation_drift.py --backbone "$RUN/$name" --tokenizer runs/anom/tokenizer \
  --store runs/anom/test_tokens.h5 --process ttbar --top-p 1 --out "benchmarks/results/generation_drift_ttbar_$name.json"
log "done"
