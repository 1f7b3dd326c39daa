#!/usr/bin/env bash
# Issue 28, the counts' shapes: the configured recipe (event-cpu.yaml: feature logits, uniform batches; the
# same 242,000 events as conditional_feature_logits.sh) with --data.multiplicity_token=true, so that each
# event's numbers of jets, b-jets and leptons are one choice right after the process token and the sampler
# then writes exactly those objects (backbone.multiplicity); measured as that run, per process, with each
# object type's full distribution and its 0.98 nucleus.
#   bash benchmarks/conditional_multiplicity.sh           # 2 cores: 60 min of training (1 thread), 12 of measuring
#   SEED=1 bash benchmarks/conditional_multiplicity.sh    # another seed
# Needs runs/anom/{tokenizer,test_tokens.h5} and runs/more/tokens.h5 (conditional_more_data.sh).
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
SEED=${SEED:-0}
source "$(dirname "$0")/real_run_lib.sh"

name=multiplicity_seed$SEED
pretrain_cpu "$name" "$SEED" --data.multiplicity_token=true
[ -n "${TRAIN_ONLY:-}" ] && exit 0
for top_p in ${TOP_PS:-1 0.98}; do measure_generation "$RUN/$name" "$name" "${GUIDANCE:-1}" "$top_p" & done
wait
log "done"
