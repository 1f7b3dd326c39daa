#!/usr/bin/env bash
# Fine-tuning batches: length-sorted (train.length_bucket 50, the default) against uniform (1). Sorted
# batches hold events of one length and, with process labels, of mostly one class (ttbar is longer than
# W+jets). Process classification of the six SM processes, full mode on the 3,000-step backbone of
# conditional_type_weight.sh, 20,000 labelled events of data/anom s1, 6 epochs, tested on s2; seeds 0, 1.
#   bash benchmarks/finetune_batching.sh    # one thread: about 15 min
# Writes benchmarks/results/finetune_batching_bucket{50,1}_seed{0,1}.json (each run's metrics.json) and,
# for the one-variable cuts on the same test events, benchmarks/results/process_cuts.json.
set -euo pipefail
ANOM=${ANOM:-data/anom}
RUN=${RUN:-runs/ftb}
RESULTS=$RUN  # steps.log
BACKBONE=${BACKBONE:-runs/more/steps3000_seed0}
mkdir -p "$RUN"
source "$(dirname "$0")/real_run_lib.sh"
for seed in 0 1; do
  for bucket in 50 1; do
    name=bucket${bucket}_seed$seed
    log "fine-tune $name"
    [ -f "$RUN/$name/metrics.json" ] || OMP_NUM_THREADS=1 python -m finetune.classify --backbone "$BACKBONE" \
      --tokenizer runs/anom/tokenizer --train $(sm_files "$ANOM" 1) --test $(sm_files "$ANOM" 2) --label process \
      --mode full --train.max_train=20000 --train.epochs=6 --train.length_bucket=$bucket --train.seed=$seed \
      --out "$RUN/$name" --quiet
    cp "$RUN/$name/metrics.json" "benchmarks/results/finetune_batching_$name.json"
    python -c "import json, sys; m = json.load(open(sys.argv[1])); print(sys.argv[2], 'mean AUC', round(m['mean_auc'], 4),
      'accuracy', round(m['accuracy'], 4), 'validation loss', round(m['best_val_loss'], 4))" "$RUN/$name/metrics.json" "$name"
  done
done
python benchmarks/process_cuts.py --test $(sm_files "$ANOM" 2) --out benchmarks/results/process_cuts.json
