#!/usr/bin/env bash
# Issue 28, the masses: does the density head place ttbar's jets closer to the W and the top when it reads
# each object's pairs with the objects before it? The anomaly benchmark's backbone with the multiplicity
# token (anomaly_multiplicity.sh) gets a fresh head, pairs of width 64 and the control without them
# (WIDTHS), each trained alone on the frozen trunk (benchmarks/density_pairs.py), then measured as that run
# was: held-out density, real ttbar decoded from its own tokens (the head teacher forced and fed its own
# draws), and 10,000 ttbar events sampled from scratch with continuous decoding.
#   bash benchmarks/density_pairs.sh     # 2 cores: about 15 min of head training per width, then 10 min
# Needs what anomaly_multiplicity.sh made: data/anom (the s1 samples), runs/anom/{tokenizer,tokens.h5,
# test_tokens.h5,backbone_multiplicity}.
set -euo pipefail
ANOM=${ANOM:-data/anom}
DATA=$ANOM
RUN=${RUN:-runs/anom}
source "$(dirname "$0")/real_run_lib.sh"
BASE=${BASE:-backbone_multiplicity}

for width in ${WIDTHS:-64 0}; do
  name=${BASE}_pairs$width
  RESULTS=benchmarks/results/density_pairs_cpu/pairs$width
  mkdir -p "$RESULTS"
  log "head with pairs of width $width on the frozen trunk of $BASE"
  [ -f "$RUN/$name/config.json" ] || OMP_NUM_THREADS=${THREADS:-2} python benchmarks/density_pairs.py \
    --backbone "$RUN/$BASE" --train "$RUN/tokens.h5" --pairs "$width" --out "$RUN/$name" \
    > "$RESULTS/head_training.log" 2>&1
  cp "$RUN/$name/head_training.json" "$RESULTS/"
  log "held-out likelihood"
  python -m backbone.likelihood --backbone "$RUN/$name" --train "$RUN/tokens.h5" --test "$RUN/test_tokens.h5" \
    --out "$RESULTS/likelihood.json" > "$RESULTS/likelihood.log"
  log "decoded from real tokens"
  python benchmarks/decode_fidelity.py --backbone "$RUN/$name" --tokenizer "$RUN/tokenizer" \
    --events "$DATA/ttbar_s1.h5" --n 10000 --out "$RESULTS/decode_fidelity.json" > "$RESULTS/decode_fidelity.log"
  log "ttbar from scratch"
  mkdir -p "$RUN/generation_pairs$width"
  out=$RUN/generation_pairs$width/synthetic_ttbar_continuous.h5
  [ -f "$out" ] || python sample.py --backbone "$RUN/$name" --tokenizer "$RUN/tokenizer" --events 10000 \
    --process ttbar --out "$out" --seed 1 --decode continuous --device cpu 2>&1 | tail -1 > "$RESULTS/sample.log"
  python -m backbone.evaluate --real "$DATA/ttbar_s1.h5" --generated "$out" --out "$RUN/generation_pairs$width/eval" \
    > "$RESULTS/evaluate.log" 2>&1
  cp "$RUN/generation_pairs$width/eval/w1.json" "$RESULTS/w1_continuous.json"
done
log "done"
