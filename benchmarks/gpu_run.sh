#!/usr/bin/env bash
# On a GPU machine, from the files of benchmarks/gpu_pack.sh: the speed benchmarks (training and MFU vs
# Hugging Face GPT-2, the CUDA-graph decoder vs generate, scaling, tokenizer encode), then the reference-size
# (8 x 512) event and constituent runs. Each STAGE fits one 10-minute device call; results land in
# benchmarks/results/ and are copied to $OUT when set (the device tool brings back what is under $OUT).
#   bash benchmarks/gpu_run.sh speed|event|constituent
set -euo pipefail
STAGE=${1:?give a stage: speed, event or constituent}
TAG=${TAG:-h100}
export PYTHONUNBUFFERED=1
case "$STAGE" in
  speed)
    python benchmarks/backbone_throughput.py --scaling --tag "$TAG"
    python benchmarks/tokenizer_throughput.py --tokenizer .gpu/real/tokenizer --input .gpu/data/ttbar_s2.h5 --tag "$TAG"
    FILES="benchmarks/results/backbone_$TAG.json benchmarks/results/tokenizer_$TAG.json" ;;
  event)
    DATA=.gpu/data TOKENIZER=.gpu/real/tokenizer TOKENS=.gpu/real/tokens.h5 RUN=runs/real_gpu PROFILE=gpu \
      bash benchmarks/real_run_event.sh
    FILES=benchmarks/results/real_run_event_gpu ;;
  constituent)
    DATA=.gpu/data TOKENIZER=.gpu/real_constituent/tokenizer TOKENS=.gpu/real_constituent/tokens.h5 \
      RUN=runs/real_constituent_gpu PROFILE=gpu BATCH=256 STEPS=${STEPS:-2000} EPOCHS=${EPOCHS:-6} \
      MAX_TRAIN=${MAX_TRAIN:-2000} bash benchmarks/real_run_constituent.sh
    FILES=benchmarks/results/real_run_constituent_gpu ;;
  *) echo "unknown stage $STAGE: speed, event or constituent" >&2; exit 2 ;;
esac
if [ -n "${OUT:-}" ]; then tar czf "$OUT/$STAGE.tgz" $FILES; fi
