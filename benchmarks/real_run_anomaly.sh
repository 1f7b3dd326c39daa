#!/usr/bin/env bash
# The README's anomaly run: a Standard Model backbone with the continuous density head (event mode,
# 8192 codes, configs/backbone/event-cpu.yaml) pretrained on about 60k generated SM events (the event
# run's mix), then every score beside the one-variable cuts on independent test files of eight
# signals, three planted tails and the SM processes; generation with centroid and continuous
# decoding against the floor; the head's held-out likelihood against a per-code Gaussian; the
# masked-token score across pretraining; the 0t..4t data-efficiency table with the new backbone and
# with the same backbone trained without the head.
#   bash benchmarks/real_run_anomaly.sh             # 2 cores: about 50 minutes
# DATA (default data/anom), RUN (default runs/anom), STEPS (default 2000), SIZES / SEEDS of the
# data-efficiency table (default 100 1000 10000 / 0). Results: RESULTS (default benchmarks/results/anomaly_density_cpu/).
# Steps whose outputs exist (tokenizer, backbones, score files, synthetic samples) are kept: remove them to redo.
set -euo pipefail
DATA=${DATA:-data/anom}
RUN=${RUN:-runs/anom}
RESULTS=${RESULTS:-benchmarks/results/anomaly_density_cpu}
mkdir -p "$DATA" "$RUN" "$RESULTS"
source "$(dirname "$0")/real_run_lib.sh"
SM=$SM_PROCESSES SIGNALS=$ANOMALY_SIGNALS
files() { for p in $1; do echo -n "$DATA/${p}_s$2.h5 "; done; }
list() { local out=""; for p in $1; do out="$out${out:+, }$DATA/${p}_s$2.h5"; done; echo "[$out]"; }

log "samples"
generate_samples "$DATA" ttbar:24000:1 wjets:18000:1 ww:5000:1 single_top_t:6000:1 single_top_s:2500:1 tw_proxy:5000:1 \
  ttt_proxy:3000:1 tttt_proxy:3000:1 $(for p in $SM $SIGNALS; do echo "$p:2000:2"; done)
python benchmarks/plant_tails.py "$DATA/ttbar_s2.h5" --out "$DATA" > /dev/null

if [ ! -f "$RUN/tokenizer/config.json" ]; then
  log "tokenizer"
  python -m tokenizer.train --config configs/tokenizer/event.yaml --quiet --data.files="$(list "$SM" 1)" \
    --data.max_events_per_file=15000 --train.epochs=8 --train.patience=3 --train.batch_size=4096 \
    --model.decay=0.9 --model.dead_code_fraction=0.3 --compare_autoencoder=false --out="$RUN/tokenizer" \
    > "$RESULTS/tokenizer.log" 2>&1
fi
log "tokenize"
python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input $(files "$SM" 1) --out "$RUN/tokens.h5" --features 2>&1 | tail -1
python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input $(files "$SM" 2) --out "$RUN/test_tokens.h5" --features 2>&1 | tail -1

if [ ! -f "$RUN/backbone/config.json" ]; then
  log "pretrain"
  python -m backbone.pretrain --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" \
    --out="$RUN/backbone" --train.max_steps="${STEPS:-2000}" --train.keep_checkpoints=true --quiet \
    > "$RESULTS/pretrain.log" 2>&1
fi
cp "$RUN/backbone/metrics.json" "$RESULTS/pretrain_metrics.json"

log "held-out likelihood: density head against a per-code Gaussian"
python -m backbone.likelihood --backbone "$RUN/backbone" --train "$RUN/tokens.h5" --test "$RUN/test_tokens.h5" \
  --out "$RESULTS/likelihood.json" | tee "$RESULTS/likelihood.log"

log "anomaly scores"
score_anomalies "$RUN/backbone" "$RUN/scores" "benchmarks/real_run_anomaly.sh: configs/backbone/event-cpu.yaml (4 x 128, density head K=8, hybrid input, type head, feature logits), ${STEPS:-2000} steps"

generation_from_scratch "$RUN/backbone" "$RUN"

log "masked-token score across pretraining"
python benchmarks/masked_study.py --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" \
  --snapshots $(ls -d "$RUN"/backbone/checkpoint_step* | sort -V) --background $(files "$SM" 2) \
  --signal "$DATA/tttt_proxy_s2.h5" --out "$RESULTS/masked_study.json" | tee "$RESULTS/masked_study.log"

# the classification reference: the same backbone, data and steps without the density head
if [ ! -f "$RUN/backbone_no_head/config.json" ]; then
  log "pretrain without the density head"
  python -m backbone.pretrain --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" \
    --out="$RUN/backbone_no_head" --train.max_steps="${STEPS:-2000}" --model.density_components=0 --quiet \
    > "$RESULTS/pretrain_no_head.log" 2>&1
fi
cp "$RUN/backbone_no_head/metrics.json" "$RESULTS/pretrain_metrics_no_head.json"
for variant in backbone backbone_no_head; do data_efficiency $variant; done
log "done"
