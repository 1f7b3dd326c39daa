#!/usr/bin/env bash
# Issue 28 with the anomaly issue, planned together: the anomaly benchmark's backbone (real_run_anomaly.sh's
# events, tokenizer and recipe) trained again with the multiplicity token (--data.multiplicity_token=true),
# then its held-out likelihood and anomaly scores on the same signals, beside the same cuts.
#   bash benchmarks/anomaly_multiplicity.sh   # 2 cores: about 35 min of training (2 threads), 15 of scoring
# Needs what real_run_anomaly.sh made: data/anom (s1, s2 samples and planted tails), runs/anom/{tokenizer,
# tokens.h5, test_tokens.h5}.
set -euo pipefail
DATA=${DATA:-data/anom}
RUN=${RUN:-runs/anom}
RESULTS=${RESULTS:-benchmarks/results/anomaly_multiplicity_cpu}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
SIGNALS="zprime_ttbar zprime2500_ttbar wprime_tb wprime_lnu qstar_qg scalar_zz4l ttt_proxy tttt_proxy"
PLANTED="planted_pt5 planted_eta4 planted_muon"
mkdir -p "$RESULTS"
source "$(dirname "$0")/real_run_lib.sh"
files() { for p in $1; do echo -n "$DATA/${p}_s$2.h5 "; done; }
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
python -m finetune.anomaly score --backbone "$backbone" --tokenizer "$RUN/tokenizer" \
  --input $(files "$SM $SIGNALS $PLANTED" 2) --out "$RUN/scores_multiplicity/" --quiet 2>&1 | tail -2 \
  | tee -a "$RESULTS/anomaly.log"
python benchmarks/anomaly_table.py --events "$DATA" --scores "$RUN/scores_multiplicity" --background $SM \
  --mix ttbar=24000 wjets=18000 ww=5000 single_top_t=6000 single_top_s=2500 tw_proxy=5000 \
  --signals $SIGNALS $PLANTED --out "$RESULTS/anomaly_table.json" \
  --note "benchmarks/anomaly_multiplicity.sh: configs/backbone/event-cpu.yaml with the multiplicity token, 2000 steps" \
  | tee "$RESULTS/anomaly_table.log"
log "done"
