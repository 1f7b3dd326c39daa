#!/usr/bin/env bash
# The bundled pretrained model `event-small` (models/event-small/, installed with the package): the
# event-mode tokenizer (8192 codes) and the CPU-size backbone with the density head
# (configs/backbone/event-cpu.yaml), pretrained on the README's Standard Model mix of 60,500 generated
# events, then measured on independent held-out files and written with its model card.
#   bash benchmarks/train_bundled.sh             # 2 cores: about an hour
# DATA (default data/bundled), RUN (default runs/bundled), STEPS (default 2000), STAGE (all, data, train,
# efficiency or package). Every step is seeded: the same machine and thread count make the same weights.
set -euo pipefail
DATA=${DATA:-data/bundled}
RUN=${RUN:-runs/bundled}
STEPS=${STEPS:-2000}
STAGE=${STAGE:-all}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
SIGNALS="zprime_ttbar wprime_lnu qstar_qg tttt_proxy"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # the thread count is part of what makes the weights
mkdir -p "$DATA" "$RUN"
source "$(dirname "$0")/real_run_lib.sh"
log() { echo "$(date +%T) $*" | tee -a "$RUN/steps.log"; }
files() { for p in $1; do echo -n "$DATA/${p}_s$2.h5 "; done; }
list() { local out=""; for p in $1; do out="$out${out:+, }$DATA/${p}_s$2.h5"; done; echo "[$out]"; }

if [ "$STAGE" = all ] || [ "$STAGE" = data ]; then
  log "samples"
  generate_samples "$DATA" ttbar:24000:1 wjets:18000:1 ww:5000:1 single_top_t:6000:1 single_top_s:2500:1 \
    tw_proxy:5000:1 $(for p in $SM $SIGNALS; do echo "$p:1000:2"; done) ttt_proxy:3000:1 tttt_proxy:3000:1 \
    ttt_proxy:1000:2
fi

if [ "$STAGE" = all ] || [ "$STAGE" = train ]; then
  log "tokenizer"
  python -m tokenizer.train --config configs/tokenizer/event.yaml --quiet --data.files="$(list "$SM" 1)" \
    --data.max_events_per_file=15000 --train.epochs=8 --train.patience=3 --train.batch_size=4096 --train.seed=0 \
    --train.device=cpu --model.decay=0.9 --model.dead_code_fraction=0.3 --compare_autoencoder=false \
    --information_loss=false --out="$RUN/tokenizer"
  log "tokenize"
  python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input $(files "$SM" 1) --out "$RUN/tokens.h5" \
    --features --quiet
  python -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" --input $(files "$SM" 2) --out "$RUN/test_tokens.h5" \
    --features --quiet
  log "pretrain"
  # the shipped event-small predates the type head, the hybrid input, feature logits and the multiplicity
  # token, which event-cpu.yaml now turns on
  python -m backbone.pretrain --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" \
    --data.val="$RUN/test_tokens.h5" --train.max_steps="$STEPS" --train.seed=0 --model.type_head=false \
    --model.hybrid=false --model.feature_logits=false --data.multiplicity_token=false --out="$RUN/backbone" --quiet
fi

NTOP="$SM ttt_proxy tttt_proxy"
if [ "$STAGE" = all ] || [ "$STAGE" = efficiency ]; then
  log "0t..4t data efficiency"
  python -m finetune.data_efficiency --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" --train $(files "$NTOP" 1) \
    --test $(files "$NTOP" 2) --sizes 100 1000 10000 --modes frozen full scratch --seeds 0 \
    --out "$RUN/data_efficiency" --quiet
fi

if [ "$STAGE" = all ] || [ "$STAGE" = package ]; then
  log "package: fp16 weights, held-out metrics, model card"
  python -m benchmarks.bundle_model --tokenizer "$RUN/tokenizer" --backbone "$RUN/backbone" --data "$DATA" \
    --background $SM --signals $SIGNALS --out models/event-small --work "$RUN/package" \
    --data-efficiency "$RUN/data_efficiency/data_efficiency.json"
fi
log "done"
