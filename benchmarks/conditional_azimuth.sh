#!/usr/bin/env bash
# Issue 28, ttbar's masses: generated leading jets are hardly back to back (mean dphi(j1, j2) 1.67 against
# the data's 2.15, where independent angles give 1.57): a code carries its object's absolute phi, so each
# angle between two objects must be learnt code pair by code pair. Here every event is first turned about
# the beam so its leading jet is at phi = 0 (what a tokenizer with `azimuth: leading_jet` does before
# encoding; benchmarks/turn_events.py), encoded by the same tokenizer, and the uniform-batch recipe of
# conditional_uniform_batches.sh (seed 0) is trained and measured on it, against the same events turned
# the same way (every observable measured is the same at any angle).
#   bash benchmarks/conditional_azimuth.sh   # 2 cores: 55 min of training (1 thread), 10 of measuring
#   NAME=rot_feature_logits_seed0 EXTRA=--model.feature_logits=true TOP_PS="1 0.98" bash benchmarks/conditional_azimuth.sh
#   SEED=1 NAME=rot_feature_logits_seed1 ...                          # another seed
# Needs data/anom/*_s{1,2}.h5 and data/more/*_s3.h5 (conditional_more_data.sh) and runs/anom/tokenizer.
set -euo pipefail
export ANOM=data/rot RUN=${RUN:-runs/rot} STORE=${RUN:-runs/rot}/test_tokens.h5
RESULTS=$RUN  # steps.log
mkdir -p "$RUN"
source "$(dirname "$0")/real_run_lib.sh"

log "turn"
for p in $SM_PROCESSES; do
  for s in 1 2; do [ -f "$ANOM/${p}_s$s.h5" ] || python benchmarks/turn_events.py "data/anom/${p}_s$s.h5" "$ANOM/${p}_s$s.h5"; done
  [ -f "$ANOM/${p}_s3.h5" ] || python benchmarks/turn_events.py "data/more/${p}_s3.h5" "$ANOM/${p}_s3.h5"
done
log "tokenize"
[ -f "$STORE" ] || python -m tokenizer.tokenize --tokenizer runs/anom/tokenizer --input $(sm_files "$ANOM" 2) \
  --out "$STORE" --features --quiet
[ -f "$RUN/tokens.h5" ] || python -m tokenizer.tokenize --tokenizer runs/anom/tokenizer \
  --input $(sm_files "$ANOM" 1) $(sm_files "$ANOM" 3) --out "$RUN/tokens.h5" --features --quiet
SEED=${SEED:-0}
name=${NAME:-rot_seed$SEED}
pretrain_cpu "$name" "$SEED" --data.length_bucket=1 ${EXTRA:---model.feature_logits=false}
for top_p in ${TOP_PS:-1 0.95}; do measure_generation "$RUN/$name" "$name" 1 "$top_p" & done
wait
log "done"
