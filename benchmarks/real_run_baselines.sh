#!/usr/bin/env bash
# Every baseline of the README's comparison tables, on the real runs' files (benchmarks/real_run_samples.sh
# and real_run_constituent.sh make them). A result already in benchmarks/results/ is kept (FORCE=1 redoes it).
#   bash benchmarks/real_run_baselines.sh        # 2 cores: about 80 minutes for the new ones
set -euo pipefail
cd "$(dirname "$0")"
D=${DATA:-../data/real}
TAG=${TAG:-cpu}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
files() { for p in $1; do echo -n "$D/${p}_s$2.h5 "; done; }
run() {  # result name, then the arguments
  local name=$1; shift
  if [ -f "results/${name}_$TAG.json" ] && [ -z "${FORCE:-}" ]; then echo "kept results/${name}_$TAG.json"; return; fi
  echo "$(date +%T) $name"
  python baseline.py --tag "$TAG" "$@" 2>&1 | grep -v "step/s\]" | tail -12
}
NTOP=(--train $(files "$SM ttt_proxy tttt_proxy" 1) --test $(files "$SM ttt_proxy tttt_proxy" 2))
run baseline_gbdt --task ntop --model gbdt "${NTOP[@]}"
run baseline_transformer --task ntop --model transformer "${NTOP[@]}"
run baseline_transformer_pretrained --task ntop --model transformer "${NTOP[@]}" --pretrain $(files "$SM" 1) \
  --pretrain-steps 2000
run baseline_part --task ntop --model part "${NTOP[@]}" --max-steps 1500
JETS=(--train $D/top_jets_s1.h5 $D/qcd_jets_s1.h5 --test $D/top_jets_s2.h5 $D/qcd_jets_s2.h5 --sizes 2000)
run baseline_jets_gbdt --task jets --model gbdt "${JETS[@]}"
run baseline_jets_transformer --task jets --model transformer "${JETS[@]}" --batch-size 64 --max-steps 400 \
  --eval-every 50
run baseline_jets_part --task jets --model part "${JETS[@]}" --batch-size 64 --max-steps 400 --eval-every 50 --seeds 0 \
  --lr 3e-4
ANOMALY=(--task anomaly --train $(files "$SM" 1) --test $(files "$SM" 2) --signal $(files "ttt_proxy tttt_proxy zprime_ttbar" 2)
  --sizes 0 --max-test-events-per-file 0)
run baseline_anomaly_gbdt "${ANOMALY[@]}" --model gbdt
run baseline_anomaly_transformer "${ANOMALY[@]}" --model transformer --seeds 0
