#!/usr/bin/env bash
# Issue 28, ttbar's masses: generated leading jets are hardly back to back (mean dphi(j1, j2) 1.67 against
# the data's 2.15; 1.57 for independent angles), as each code's logit is learnt on its own. The uniform-
# batch recipe of conditional_uniform_batches.sh (the same 242,000 events) with
# --model.feature_logits=true (each code's logit tilted by a learnt function of its features), measured as
# that run: conditional generation per process with each object type's full distribution and its 0.95 and
# 0.98 nuclei.
#   bash benchmarks/conditional_feature_logits.sh   # 2 cores: 55 min of training (1 thread), 15 of measuring
#   SEED=1 bash benchmarks/conditional_feature_logits.sh             # another seed
#   WIDTH=64 bash benchmarks/conditional_feature_logits.sh           # the basis widened by a 64-wide MLP
#   GUIDANCE=1.1 TOP_PS=0.98 bash benchmarks/conditional_feature_logits.sh  # a trained backbone, guided
# Needs runs/anom/{tokenizer,test_tokens.h5} and runs/more/tokens.h5 (conditional_more_data.sh).
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/more}
RESULTS=$RUN  # steps.log
SEED=${SEED:-0}
WIDTH=${WIDTH:-0}
source "$(dirname "$0")/real_run_lib.sh"

name=feature_logits$([ "$WIDTH" = 0 ] || echo "_w$WIDTH")_seed$SEED
pretrain_cpu "$name" "$SEED" --data.length_bucket=1 --model.feature_logits=true --model.feature_logits_width="$WIDTH"
for top_p in ${TOP_PS:-1 0.95 0.98}; do measure_generation "$RUN/$name" "$name" "${GUIDANCE:-1}" "$top_p" & done
wait
log "done"
