#!/usr/bin/env bash
# Issue 28 with the anomaly issue, planned together: the anomaly benchmark's backbone (real_run_anomaly.sh's
# events, tokenizer and recipe) trained again with the multiplicity token (--data.multiplicity_token=true),
# then its held-out likelihood and anomaly scores on the same signals, beside the same cuts.
#   bash benchmarks/anomaly_multiplicity.sh   # 2 cores: about 50 min of training (THREADS=1), 15 of scoring
# Needs what real_run_anomaly.sh made: data/anom (s1, s2 samples and planted tails), runs/anom/{tokenizer,
# tokens.h5, test_tokens.h5}.
set -euo pipefail
DATA=${DATA:-data/anom}
RUN=${RUN:-runs/anom}
RESULTS=${RESULTS:-benchmarks/results/anomaly_multiplicity_cpu}
mkdir -p "$RESULTS"
source "$(dirname "$0")/real_run_lib.sh"
backbone=$RUN/backbone_multiplicity

if [ ! -f "$backbone/config.json" ]; then
  log "pretrain"
  OMP_NUM_THREADS=${THREADS:-2} python -m backbone.pretrain --config configs/backbone/event-cpu.yaml \
    --data.train="$RUN/tokens.h5" --data.multiplicity_token=true --out="$backbone" --quiet > "$RESULTS/pretrain.log" 2>&1
fi
cp "$backbone/metrics.json" "$RESULTS/pretrain_metrics.json"
log "held-out likelihood"
python -m backbone.likelihood --backbone "$backbone" --train "$RUN/tokens.h5" --test "$RUN/test_tokens.h5" \
  --out "$RESULTS/likelihood.json" | tee "$RESULTS/likelihood.log"
log "anomaly scores"
score_anomalies "$backbone" "$RUN/scores_multiplicity" \
  "benchmarks/anomaly_multiplicity.sh: configs/backbone/event-cpu.yaml with the multiplicity token, 2000 steps"
log "done"
