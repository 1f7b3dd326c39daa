#!/usr/bin/env bash
# Issue 28, uniform batches from the start: the event-cpu recipe (2,000 steps, pt-ordered density, weight
# average) on the 242,000 events of conditional_more_data.sh with every batch a uniform draw
# (data.length_bucket 1) instead of length-sorted, seeds 0 and 1 side by side (one thread each); then
# conditional generation per process at guidance 1 and 1.25 against the same held-out store and references
# as the length-sorted runs of conditional_more_data.sh (more_data_pt_order_seed{0,1}), which they replicate
# in everything else.
#   bash benchmarks/conditional_uniform_batches.sh    # 2 cores: about 105 min of training, 15 of measuring
# Needs runs/anom/{tokenizer,test_tokens.h5} (real_run_anomaly.sh) and runs/more/tokens.h5
# (conditional_more_data.sh). Backbones that exist are kept: remove them to redo.
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
source "$(dirname "$0")/real_run_lib.sh"

train_and_measure() {  # seed
  local name=uniform_batches_seed$1 w
  pretrain_cpu "$name" "$1" --data.length_bucket=1 --model.feature_logits=false
  for w in 1 1.25; do measure_generation "$RUN/$name" "$name" $w; done
}
train_and_measure 0 &
train_and_measure 1 &
wait
log "done"
