#!/usr/bin/env bash
# Signals injected into data (benchmarks/signal_injection.py) with the bundled model `event-small`: the
# SM pool is the bundled training-seed files (data, reference and test background: three disjoint
# samples in the training mix's proportions), the signals their seed-2 files with seed-3 files generated
# beside them, the planted tail the seed-2 ttbar events with seed-4 ones.
#   bash benchmarks/signal_injection.sh     # 2 shared cores: about 20 minutes, plus about 10 the first time
#                                           # (the generated reference, cached); the head (HEAD=1): minutes per training
# BUNDLED (default /work/main/data/bundled or data/bundled), DATA (default data/injection), EVENTS (SM
# events in the data, default 20000), SEEDS (default 0 1), TAG (default cpu); extra arguments go to
# the script (e.g. --head-fractions 0.001 0.003 0.01 0.03 --head-seeds 0 1 2 --device cuda on a GPU).
set -euo pipefail
BUNDLED=${BUNDLED:-$( [ -d data/bundled ] && echo data/bundled || echo /work/main/data/bundled )}
DATA=${DATA:-data/injection}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
SIGNALS="zprime_ttbar qstar_qg wprime_lnu tttt_proxy"
mkdir -p "$DATA"
for spec in zprime_ttbar:2000:3 wprime_lnu:2000:3 qstar_qg:2000:3 tttt_proxy:2000:3 ttbar:2000:4; do
  IFS=: read -r p n s <<< "$spec"
  [ -f "$DATA/${p}_s$s.h5" ] || python -m events.generate --process "$p" --events "$n" --seed "$s" --out "$DATA/${p}_s$s.h5" --quiet
done
python benchmarks/signal_injection.py --pool $(for p in $SM; do echo -n "$BUNDLED/${p}_s1.h5 "; done) \
  --signal $(for p in $SIGNALS; do echo -n "$p=$BUNDLED/${p}_s2.h5,$DATA/${p}_s3.h5 "; done) \
  --planted "$BUNDLED/ttbar_s2.h5" "$DATA/ttbar_s4.h5" --generated "$DATA/generated_reference.h5" \
  --data-events "${EVENTS:-20000}" --seeds ${SEEDS:-0 1} --tag "${TAG:-cpu}" \
  $( [ "${HEAD:-0}" = 1 ] || echo "--head-fractions" ) "$@"
