#!/usr/bin/env bash
# The README's real tokenizer run: > 10^6 objects from the built-in Pythia source, event and
# constituent mode, then the encode-throughput benchmark. On the GPU machine (16 cores):
#   bash benchmarks/tokenizer_real_run.sh /tmp/real RESULTS_DIR
# Copies the headline files (metrics, plots, logs) into RESULTS_DIR.
set -euo pipefail
RUN=${1:-runs/real}
RESULTS=${2:-$RUN/results}
DATA=$RUN/data
WORKERS=${WORKERS:-$(nproc)}
mkdir -p "$DATA" "$RESULTS"
EVENT_FILES=""
for spec in wjets:40000 single_top_t:30000 ttbar:60000 ttt_proxy:20000 tttt_proxy:20000 top_jets:6000 qcd_jets:6000; do
  process=${spec%%:*}; n=${spec##*:}
  python -m events.generate --process "$process" --events "$n" --out "$DATA/$process.h5" --seed 1 \
    --workers "$WORKERS" --quiet --stats "$RUN/generate_$process.json"
  case $process in top_jets|qcd_jets) ;; *) EVENT_FILES="$EVENT_FILES${EVENT_FILES:+, }$DATA/$process.h5" ;; esac
done
python -m tokenizer.train --config configs/tokenizer/event.yaml --quiet --data.files="[$EVENT_FILES]" \
  --out="$RUN/tokenizer_event" 2>&1 | grep -v WARNING | tee "$RESULTS/train_event.log"
cp "$RUN/tokenizer_event/metrics.json" "$RESULTS/metrics_event.json"
cp "$RUN/tokenizer_event/features_round_trip.png" "$RESULTS/event_features_round_trip.png"
cp "$RUN/tokenizer_event/residuals_and_usage.png" "$RESULTS/event_residuals_and_usage.png"
python -m tokenizer.train --config configs/tokenizer/constituent.yaml --quiet \
  --data.files="[$DATA/top_jets.h5, $DATA/qcd_jets.h5]" --out="$RUN/tokenizer_constituent" 2>&1 \
  | grep -v WARNING | tee "$RESULTS/train_constituent.log"
cp "$RUN/tokenizer_constituent/metrics.json" "$RESULTS/metrics_constituent.json"
cp "$RUN/tokenizer_constituent/residuals_and_usage.png" "$RESULTS/constituent_residuals_and_usage.png"
python benchmarks/tokenizer_throughput.py --tokenizer "$RUN/tokenizer_event" --input "$DATA/ttbar.h5" \
  --tag h100 --out "$RESULTS"
