#!/usr/bin/env bash
# Issue 28, the per-token pull toward the mix: on the 242,000 events of conditional_more_data.sh, the
# event-cpu recipe (pt-ordered density, weight average) trained 3,000 steps instead of 2,000, once as
# configured and once with the type decisions weighted beyond the token loss (`train.weight_type`, the
# same seed); then conditional generation per process at guidance 1 and 1.25 against the same held-out
# store and references. The two trainings run side by side, one thread each.
#   bash benchmarks/conditional_type_weight.sh    # 2 cores: about 80 min of training, 25 of measuring
# Needs runs/anom/{tokenizer,test_tokens.h5} (real_run_anomaly.sh) and runs/more/tokens.h5
# (conditional_more_data.sh). Backbones that exist are kept: remove them to redo.
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
STEPS=${STEPS:-3000}
WEIGHT=${WEIGHT:-4}
source "$(dirname "$0")/real_run_lib.sh"

train_and_measure() {  # name [extra arguments...]
  local name=$1 w; shift
  pretrain_cpu "$name" 0 --train.max_steps="$STEPS" "$@"
  for w in 1 1.25; do measure_generation "$RUN/$name" "$name" $w; done
}
train_and_measure "steps${STEPS}_seed0" &
train_and_measure "steps${STEPS}_type_weight${WEIGHT}_seed0" --train.weight_type="$WEIGHT" &
wait
log "done"
