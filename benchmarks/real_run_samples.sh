#!/usr/bin/env bash
# The generated samples of the README's real runs (benchmarks/real_run_event.sh), into $DATA:
#   seed 1: the pretraining sample, Standard Model with up to two top quarks (5.0 x 10^5 events), and
#           3- and 4-top proxies for fine-tuning (never seen in pretraining);
#   seed 2: independent test samples of every process, and the Z' -> ttbar signal.
# 2 cores: about 45 minutes (WORKERS=16 on a 16-core host: about 8).
set -euo pipefail
DATA=${DATA:-data/real}
WORKERS=${WORKERS:-$(nproc)}
mkdir -p "$DATA"
for spec in ttbar:200000:1 wjets:150000:1 ww:40000:1 single_top_t:50000:1 single_top_s:20000:1 tw_proxy:40000:1 \
            ttbar:5000:2 wjets:5000:2 ww:5000:2 single_top_t:5000:2 single_top_s:5000:2 tw_proxy:5000:2 \
            ttt_proxy:5000:2 tttt_proxy:5000:2 zprime_ttbar:5000:2 ttt_proxy:10000:1 tttt_proxy:10000:1; do
  IFS=: read -r process n seed <<< "$spec"
  out=$DATA/${process}_s$seed.h5
  [ -f "$out" ] && continue
  python -m events.generate --process "$process" --events "$n" --out "$out" --seed "$seed" --workers "$WORKERS" \
    --quiet --stats "$DATA/generate_${process}_s$seed.json"
done
