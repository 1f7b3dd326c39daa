#!/usr/bin/env bash
# Issue 28, more events per process, and the density trained as it is sampled: the anomaly run's SM mix
# (benchmarks/real_run_anomaly.sh, DATA=data/anom) with three times as many events again (seed 3, the same
# proportions: 242,000 events in all), tokenized with that run's tokenizer; backbones of
# configs/backbone/event-cpu.yaml (the same 2,000 steps) on them, seed 0 with and without
# `model.density_pt_order`, and seed 1 with it; then conditional generation per process at guidance 1
# and 1.25 against the same held-out store and references as runs/ema/seed{0,1}, and
# benchmarks/density_order_bias.py. Trainings run two at a time, one thread each.
#   bash benchmarks/conditional_more_data.sh    # 2 cores: about 11 min of generation, 100 min of training
# Needs runs/anom (real_run_anomaly.sh). Samples and backbones that exist are kept: remove them to redo.
set -euo pipefail
ANOM=${ANOM:-data/anom}
DATA=${DATA:-data/more}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
OUT=benchmarks/results
mkdir -p "$DATA" "$RUN"
source "$(dirname "$0")/real_run_lib.sh"

log "samples"
generate_samples "$DATA" ttbar:72000:3 wjets:54000:3 ww:15000:3 single_top_t:18000:3 single_top_s:7500:3 tw_proxy:15000:3
log "tokenize"
python -m tokenizer.tokenize --tokenizer runs/anom/tokenizer --input $(sm_files "$ANOM" 1) $(sm_files "$DATA" 3) \
  --out "$RUN/tokens.h5" --features --quiet 2>&1 | tail -1
# name:seed:extra arguments:guidance weights
RUNS="more_data:0::1,1.25 more_data_pt_order:0:--model.density_pt_order=true:1,1.25 \
  more_data_pt_order:1:--model.density_pt_order=true:1,1.25"
train_and_measure() {
  local name seed extra weights w
  IFS=: read -r name seed extra weights <<< "$1"
  pretrain_cpu "${name}_seed$seed" "$seed" $extra
  for w in ${weights//,/ }; do
    measure_generation "$RUN/${name}_seed$seed" "${name}_seed$seed" "$w"
  done
  OMP_NUM_THREADS=1 python benchmarks/density_order_bias.py --backbone "$RUN/${name}_seed$seed" \
    --store runs/anom/test_tokens.h5 --out "$OUT/density_order_bias_${name}_seed$seed.json"
}
set -- $RUNS
(train_and_measure "$1"; train_and_measure "$3") &
train_and_measure "$2" &
wait
OMP_NUM_THREADS=1 python benchmarks/density_order_bias.py --backbone runs/ema/seed0 --store runs/anom/test_tokens.h5 \
  --out "$OUT/density_order_bias_ema_seed0.json"
log "done"
