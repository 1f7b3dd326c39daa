#!/usr/bin/env bash
# Per-object MLP encoder vs set-transformer encoder, same data, same everything else (GPU machine):
#   bash benchmarks/tokenizer_encoder_comparison.sh /tmp/cmp RESULTS_DIR
set -euo pipefail
RUN=${1:-runs/encoder_comparison}
RESULTS=${2:-$RUN/results}
DATA=$RUN/data
WORKERS=${WORKERS:-$(nproc)}
mkdir -p "$DATA" "$RESULTS"
for spec in top_jets:6000 qcd_jets:6000 ttbar:40000 wjets:30000; do
  python -m events.generate --process "${spec%%:*}" --events "${spec##*:}" --out "$DATA/${spec%%:*}.h5" --seed 2 \
    --workers "$WORKERS" --quiet
done
COMMON="--quiet --compare_autoencoder=false --train.epochs=20"
for encoder in mlp transformer; do
  python -m tokenizer.train --config configs/tokenizer/constituent.yaml $COMMON --model.encoder=$encoder \
    --data.files="[$DATA/top_jets.h5, $DATA/qcd_jets.h5]" --out="$RUN/constituent_$encoder" 2>&1 | grep -v WARNING
  cp "$RUN/constituent_$encoder/metrics.json" "$RESULTS/encoder_constituent_$encoder.json"
done
for encoder in mlp transformer; do
  python -m tokenizer.train --config configs/tokenizer/event.yaml $COMMON --model.encoder=$encoder \
    --data.files="[$DATA/ttbar.h5, $DATA/wjets.h5]" --out="$RUN/event_$encoder" 2>&1 | grep -v WARNING
  cp "$RUN/event_$encoder/metrics.json" "$RESULTS/encoder_event_$encoder.json"
done
