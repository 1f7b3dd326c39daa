#!/usr/bin/env bash
# The README's real event-mode run: tokenizer, pretraining on >= 5x10^5 generated Standard Model
# events with up to two top quarks, generation quality, fine-tuning data efficiency (0t..4t), and
# anomaly scores of signals the backbone never saw.
#   PROFILE=cpu bash benchmarks/real_run_event.sh   # 2 cores: small backbone (configs/backbone/event-cpu.yaml)
#   PROFILE=gpu bash benchmarks/real_run_event.sh   # reference size (configs/backbone/event.yaml)
# Expects the samples of `benchmarks/real_run_samples.sh` in $DATA; writes $RUN and copies the headline
# files to benchmarks/results/real_run_event_$PROFILE/. Fine-tuning reads MAX_EVENTS per file (default
# 3000: 24k test events) with SIZES labelled events (default 100 1000 10000) and SEEDS (default 0 1).
#   HYBRID=1 ... : the hybrid input (continuous features embedded beside the tokens), in $RUN (default
#                  runs/real_hybrid) and benchmarks/results/real_run_event_${PROFILE}_hybrid/
#   TOKENIZER=runs/real/tokenizer ... : reuse a trained tokenizer (the same codes for both variants)
#   TOKENS=runs/real/tokens.h5 ...      : and its token store (what benchmarks/gpu_pack.sh carries to a GPU)
set -euo pipefail
DATA=${DATA:-data/real}
source "$(dirname "$0")/real_run_lib.sh"
run_settings real real_run_event
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
mkdir -p "$RUN" "$RESULTS"
list() { local out=""; for p in $1; do out="$out${out:+, }$DATA/${p}_s$2.h5"; done; echo "[$out]"; }
files() { for p in $1; do echo -n "$DATA/${p}_s$2.h5 "; done; }

reuse tokenizer "${TOKENIZER:-}" "$RUN/tokenizer" || {
  python -m tokenizer.train --config configs/tokenizer/event.yaml --quiet --data.files="$(list "$SM" 1)" \
    --data.max_events_per_file=15000 --train.epochs=8 --train.patience=3 --train.batch_size=4096 \
    --model.decay=0.9 --model.dead_code_fraction=0.3 --compare_autoencoder=false --out="$RUN/tokenizer" \
    2>&1 | grep -v WARNING | tail -40 > "$RESULTS/tokenizer.log"
}
cp "$RUN/tokenizer/metrics.json" "$RESULTS/tokenizer_metrics.json"

reuse tokenize "${TOKENS:-}" "$RUN/tokens.h5" || {
  python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input $(files "$SM" 1) --out "$RUN/tokens.h5" $TOKENIZE_ARGS 2>&1 \
    | tail -1 | tee "$RESULTS/tokenize.log"
}

log "pretrain"
python -m backbone.pretrain --config "$CONFIG" --data.train="$RUN/tokens.h5" \
  --out="$RUN/backbone" $PRETRAIN_ARGS --quiet > "$RESULTS/pretrain.log" 2>&1
cp "$RUN/backbone/metrics.json" "$RESULTS/pretrain_metrics.json"
cp "$RUN/backbone/loss_curves.png" "$RESULTS/"

log "sample"
python sample.py --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --events 20000 --process ttbar \
  --out "$RUN/synthetic_ttbar.h5" --seed 1 2>&1 | tail -1 | tee "$RESULTS/sample.log"
python -m backbone.evaluate --real "$DATA/ttbar_s2.h5" --generated "$RUN/synthetic_ttbar.h5" \
  --out "$RUN/eval_ttbar" > "$RESULTS/evaluate.log" 2>&1
cp "$RUN/eval_ttbar/"*.json "$RUN/eval_ttbar/"*.png "$RESULTS/"

log "data efficiency"
python -m finetune.data_efficiency --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" \
  --train $(files "$SM ttt_proxy tttt_proxy" 1) --test $(files "$SM ttt_proxy tttt_proxy" 2) \
  --sizes ${SIZES:-100 1000 10000} --seeds ${SEEDS:-0 1} --out "$RUN/data_efficiency" --quiet \
  --data.max_events_per_file=${MAX_EVENTS:-3000} --train.epochs=${EPOCHS:-8} --train.min_steps=300 --train.patience=3 \
  > "$RESULTS/data_efficiency.log" 2>&1
cp "$RUN/data_efficiency/"* "$RESULTS/"

log "SM classifier for the entropy score"
python -m finetune.classify --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --train $(files "$SM" 1) \
  --label process --mode full --out "$RUN/sm_classifier" --quiet --data.max_events_per_file=${MAX_EVENTS:-3000} \
  --train.epochs=${EPOCHS:-8} > "$RESULTS/sm_classifier.log" 2>&1

log "anomaly scores"
for f in $(files "$SM ttt_proxy tttt_proxy zprime_ttbar" 2); do
  python -m finetune.anomaly score --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --input "$f" \
    --out "$RUN/scores/$(basename "$f")" --method nll masked quantization entropy --classifier "$RUN/sm_classifier" \
    --quiet 2>&1 | tail -1 | tee -a "$RESULTS/anomaly.log"
done
for sig in ttt_proxy tttt_proxy zprime_ttbar; do
  python -m finetune.anomaly evaluate --background $(for p in $SM; do echo -n "$RUN/scores/${p}_s2.h5 "; done) \
    --signal "$RUN/scores/${sig}_s2.h5" --out "$RUN/anomaly_$sig" | tee "$RESULTS/anomaly_$sig.md"
  cp "$RUN/anomaly_$sig/anomaly_metrics.json" "$RESULTS/anomaly_${sig}.json"
  cp "$RUN/anomaly_$sig/anomaly_roc_sic.png" "$RESULTS/anomaly_${sig}.png"
done
log "weakly supervised head: the seed-2 SM samples with four tops mixed in (1 in 7), against a seed-1 SM reference"
mkdir -p "$RUN/head"
python -m events.convert $(files "$SM tttt_proxy" 2) "$RUN/head/data.h5" > /dev/null 2>&1
python -m events.convert $(files "$SM" 1) "$RUN/head/reference.h5" --max-events 5000 > /dev/null 2>&1
python -m finetune.anomaly score --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --input "$RUN/head/data.h5" \
  --out "$RUN/head/scores.h5" --method head --reference "$RUN/head/reference.h5" --head-epochs 5 --quiet \
  2>&1 | tail -1 | tee -a "$RESULTS/anomaly.log"
python -m finetune.anomaly evaluate --scores "$RUN/head/scores.h5" --signal-process tttt_proxy \
  --out "$RUN/anomaly_head" | tee "$RESULTS/anomaly_tttt_proxy+head.md"
cp "$RUN/anomaly_head/anomaly_metrics.json" "$RESULTS/anomaly_tttt_proxy+head.json"
log "done"
