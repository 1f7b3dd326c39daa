#!/usr/bin/env bash
# Issue 28, the masses: the anomaly benchmark's backbone with the multiplicity token (anomaly_multiplicity.sh: the
# same events, tokenizer and recipe) trained again with --model.momentum_logits=true, each code's four-momentum
# terms in its logit tilt (a bump at the W mass with an earlier jet becomes one quadratic form), and measured as
# that run: per process with each its own draw, ttbar from scratch (centroid and continuous decoding), and real
# ttbar events decoded from their own tokens (centroids, the head teacher forced, the head fed its own draws).
#   bash benchmarks/momentum_logits.sh          # 2 cores: about 70 min of training (THREADS=2), then 20 min
#   SEED=1 bash benchmarks/momentum_logits.sh   # another seed
# Needs what real_run_anomaly.sh made: data/anom (the s1 samples), runs/anom/{tokenizer,tokens.h5,test_tokens.h5}.
set -euo pipefail
ANOM=${ANOM:-data/anom}
DATA=$ANOM
RUN=${RUN:-runs/anom}
source "$(dirname "$0")/real_run_lib.sh"
seeded_results anomaly_momentum
name=backbone_momentum$suffix

THREADS=${THREADS:-2} pretrain_cpu "$name" "$SEED" --data.multiplicity_token=true --model.momentum_logits=true
cp "$RUN/$name/metrics.json" "$RESULTS/pretrain_metrics.json"
log "held-out likelihood"
python -m backbone.likelihood --backbone "$RUN/$name" --train "$RUN/tokens.h5" --test "$RUN/test_tokens.h5" \
  --out "$RESULTS/likelihood.json" | tee "$RESULTS/likelihood.log"
measure_generation "$RUN/$name" "anom_momentum_seed$SEED" 1 0.98 &
mkdir -p "$RUN/generation_momentum$suffix"
export OMP_NUM_THREADS=1
generation_from_scratch "$RUN/$name" "$RUN/generation_momentum$suffix"
wait
log "done"
