#!/usr/bin/env bash
# Issue 28 with the anomaly issue, planned together: the anomaly benchmark's backbone (real_run_anomaly.sh's
# events, tokenizer and recipe) trained again with the multiplicity token (--data.multiplicity_token=true),
# then its held-out likelihood and anomaly scores on the same signals, beside the same cuts; and what adopting
# the token would change in that script's other tables: ttbar generated from scratch against Pythia (centroid
# and continuous decoding, the decoding of real tokens) and the 0t..4t data efficiency by head swap.
#   bash benchmarks/anomaly_multiplicity.sh   # 2 cores: about 55 min of training (THREADS=1), then 20 min
#   SEED=1 bash benchmarks/anomaly_multiplicity.sh   # another seed
# Needs what real_run_anomaly.sh made: data/anom (s1, s2 samples and planted tails), runs/anom/{tokenizer,
# tokens.h5, test_tokens.h5}.
set -euo pipefail
DATA=${DATA:-data/anom}
RUN=${RUN:-runs/anom}
source "$(dirname "$0")/real_run_lib.sh"
seeded_results anomaly_multiplicity
backbone=$RUN/backbone_multiplicity$suffix

if [ ! -f "$backbone/config.json" ]; then
  log "pretrain"
  OMP_NUM_THREADS=${THREADS:-2} python -m backbone.pretrain --config configs/backbone/event-cpu.yaml \
    --data.train="$RUN/tokens.h5" --data.multiplicity_token=true --train.seed="$SEED" --out="$backbone" --quiet \
    > "$RESULTS/pretrain.log" 2>&1
fi
cp "$backbone/metrics.json" "$RESULTS/pretrain_metrics.json"
log "held-out likelihood"
python -m backbone.likelihood --backbone "$backbone" --train "$RUN/tokens.h5" --test "$RUN/test_tokens.h5" \
  --out "$RESULTS/likelihood.json" | tee "$RESULTS/likelihood.log"
log "anomaly scores"
# one thread each beside generation and fine-tuning
OMP_NUM_THREADS=1 score_anomalies "$backbone" "$RUN/scores_multiplicity$suffix" \
  "benchmarks/anomaly_multiplicity.sh: configs/backbone/event-cpu.yaml with the multiplicity token, 2000 steps" &
mkdir -p "$RUN/generation_multiplicity$suffix"
export OMP_NUM_THREADS=1
generation_from_scratch "$backbone" "$RUN/generation_multiplicity$suffix"
data_efficiency "backbone_multiplicity$suffix"
wait
log "done"
