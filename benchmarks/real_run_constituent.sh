#!/usr/bin/env bash
# Constituent mode at CPU scale: top and QCD jets (up to 128 constituents each) from the built-in source,
# a constituent tokenizer, a small backbone pretrained on both (no labels), and top-vs-QCD classification
# by head swap (frozen, full) against the same network from scratch, tested on independent jets (class 1,
# the signal of the rejection figures, is top_jets).
#   bash benchmarks/real_run_constituent.sh      # 2 cores: about 25 minutes
#   PROFILE=gpu TOKENIZER=... TOKENS=... bash benchmarks/real_run_constituent.sh   # reference size (8 x 512),
#                                                  reusing a tokenizer and token store (benchmarks/gpu_pack.sh)
#   HYBRID=1 TOKENIZER=runs/real_constituent/tokenizer ... : the hybrid input (features beside the tokens)
set -euo pipefail
DATA=${DATA:-data/real}
source "$(dirname "$0")/real_run_lib.sh"
run_settings real_constituent real_run_constituent
JETS=${JETS:-10000}
mkdir -p "$DATA" "$RUN" "$RESULTS"
for spec in top_jets:$JETS:1 qcd_jets:$JETS:1 top_jets:2000:2 qcd_jets:2000:2; do
  IFS=: read -r process n seed <<< "$spec"
  [ -f "$DATA/${process}_s$seed.h5" ] || python -m events.generate --process "$process" --events "$n" --seed "$seed" \
    --out "$DATA/${process}_s$seed.h5" --workers "$(nproc)" --quiet
done
reuse tokenizer "${TOKENIZER:-}" "$RUN/tokenizer" || {
python -m tokenizer.train --config configs/tokenizer/constituent.yaml --quiet \
  --data.files="[$DATA/top_jets_s1.h5, $DATA/qcd_jets_s1.h5]" --train.epochs=6 --train.batch_size=4096 \
  --model.decay=0.9 --model.dead_code_fraction=0.3 --compare_autoencoder=false --information_loss=false \
  --out="$RUN/tokenizer" 2>&1 | grep -v WARNING | tail -20 > "$RESULTS/tokenizer.log"
}
cp "$RUN/tokenizer/metrics.json" "$RESULTS/tokenizer_metrics.json"
reuse tokenize "${TOKENS:-}" "$RUN/tokens.h5" || {
  python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input "$DATA/top_jets_s1.h5" "$DATA/qcd_jets_s1.h5" \
    --out "$RUN/tokens.h5" $TOKENIZE_ARGS 2>&1 | tail -1 | tee "$RESULTS/tokenize.log"
}
log "pretrain"
python -m backbone.pretrain --config "$CONFIG" --data.train="$RUN/tokens.h5" \
  --data.conditional=false --train.batch_size=${BATCH:-64} --train.max_steps=${STEPS:-800} --train.eval_every=200 \
  --train.warmup_steps=50 --out="$RUN/backbone" $PRETRAIN_ARGS --quiet > "$RESULTS/pretrain.log" 2>&1
cp "$RUN/backbone/metrics.json" "$RESULTS/pretrain_metrics.json"
cp "$RUN/backbone/loss_curves.png" "$RESULTS/"
for mode in frozen full scratch; do
  log "top vs QCD: $mode"
  python -m finetune.classify --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --label process \
    --train "$DATA/top_jets_s1.h5" "$DATA/qcd_jets_s1.h5" --test "$DATA/top_jets_s2.h5" "$DATA/qcd_jets_s2.h5" \
    --mode "$mode" --out "$RUN/classify_$mode" --quiet --train.epochs=${EPOCHS:-4} --train.batch_size=128 \
    --data.classes="[qcd_jets, top_jets]" \
    --data.val_events=2000 --train.max_train=${MAX_TRAIN:-0} > "$RESULTS/classify_$mode.log" 2>&1
  cp "$RUN/classify_$mode/metrics.json" "$RESULTS/classify_$mode.json"
done
log "done"
