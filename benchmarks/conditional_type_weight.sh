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
OUT=benchmarks/results
STEPS=${STEPS:-3000}
WEIGHT=${WEIGHT:-4}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
source "$(dirname "$0")/real_run_lib.sh"
files() { for p in $SM; do echo -n "$1/${p}_s$2.h5 "; done; }

train_and_measure() {  # name extra-arguments
  local name=$1 extra=$2 w
  log "pretrain $name"
  [ -f "$RUN/$name/config.json" ] || OMP_NUM_THREADS=1 python -m backbone.pretrain \
    --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" --train.seed=0 \
    --train.max_steps="$STEPS" $extra --out="$RUN/$name" --quiet > "$RUN/pretrain_$name.log" 2>&1
  for w in 1 1.25; do
    log "measure $name at guidance $w"
    OMP_NUM_THREADS=1 python benchmarks/conditional_generation.py --backbone "$RUN/$name" \
      --tokenizer runs/anom/tokenizer --store runs/anom/test_tokens.h5 --real $(files "$ANOM" 1) --events 5000 \
      --guidance $w --out "$OUT/conditional_generation_${name}_guidance$w.json" > "$RUN/conditional_${name}_guidance$w.log" 2>&1
  done
}
train_and_measure "steps${STEPS}_seed0" "" &
train_and_measure "steps${STEPS}_type_weight${WEIGHT}_seed0" "--train.weight_type=$WEIGHT" &
wait
log "done"
