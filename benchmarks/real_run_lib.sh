# Shared by the real-run scripts (sourced).
# run_settings RUN_NAME RESULTS_NAME: what PROFILE (cpu: the small backbone; gpu: the reference size) and
# HYBRID=1 (features beside the tokens) choose: the run and results folders, extra arguments, the config.
run_settings() {
  PROFILE=${PROFILE:-cpu}
  HYBRID=${HYBRID:-0}
  SUFFIX=$([ "$HYBRID" = 1 ] && echo _hybrid || true)
  RUN=${RUN:-runs/$1$SUFFIX}
  RESULTS=benchmarks/results/${2}_$PROFILE$SUFFIX
  TOKENIZE_ARGS=--features  # the density head trains on the features (and the hybrid reads them)
  PRETRAIN_ARGS=$([ "$HYBRID" = 1 ] && echo --model.hybrid=true || true)
  CONFIG=configs/backbone/$([ "$PROFILE" = cpu ] && echo event-cpu || echo event).yaml
}
# seeded_results NAME: SEED (default 0), suffix (empty for seed 0, else _seedSEED) and RESULTS (default
# benchmarks/results/NAME_cpu<suffix>, made): where a seeded study of the anomaly benchmark's backbone writes
seeded_results() {
  SEED=${SEED:-0}
  suffix=$([ "$SEED" = 0 ] || echo "_seed$SEED")
  RESULTS=${RESULTS:-benchmarks/results/$1_cpu$suffix}
  mkdir -p "$RESULTS"
}
log() { echo "$(date +%T) $*" | tee -a "$RESULTS/steps.log"; }
# reuse STEP SOURCE DEST: when SOURCE is set (a trained tokenizer or a token store), copy it to DEST and
# succeed; otherwise fail, so that `reuse ... || { make it; }` makes it.
reuse() {
  [ -n "$2" ] || { log "$1"; return 1; }
  log "$1: reusing $2"
  rm -rf "$3"; cp -r "$2" "$3" || exit 1
}
# generate_samples FOLDER PROCESS:EVENTS:SEED...: each sample as FOLDER/PROCESS_sSEED.h5, unless it is there
generate_samples() {
  local folder=$1 spec process n seed out; shift
  for spec in "$@"; do
    IFS=: read -r process n seed <<< "$spec"
    out=$folder/${process}_s$seed.h5
    [ -f "$out" ] && continue
    python -m events.generate --process "$process" --events "$n" --out "$out" --seed "$seed" --workers "$(nproc)" \
      --quiet 2>&1 | tail -1
  done
}

# The studies of conditional generation (conditional_*.sh) and fine-tuning (finetune_batching.sh) on the
# six SM processes of real_run_anomaly.sh: its sample files ANOM/PROCESS_sSEED.h5, its tokenizer and
# held-out store (runs/anom), and backbones in RUN.
SM_PROCESSES="ttbar wjets ww single_top_t single_top_s tw_proxy"
# sm_files FOLDER SEED: the six processes' sample files of that seed
sm_files() { local p; for p in $SM_PROCESSES; do echo -n "$1/${p}_s$2.h5 "; done; }
# The anomaly benchmark's signals and planted tails, each tested on DATA/NAME_s2.h5 beside the SM processes'
ANOMALY_SIGNALS="zprime_ttbar zprime2500_ttbar wprime_tb wprime_lnu qstar_qg scalar_zz4l ttt_proxy tttt_proxy"
PLANTED_TAILS="planted_pt5 planted_eta4 planted_muon"
# score_anomalies BACKBONE SCORES NOTE: every test file of DATA scored by BACKBONE (with RUN/tokenizer) into
# SCORES, then the AUCs against the SM mix beside the one-variable cuts into RESULTS/anomaly_table.json. One
# job over every file: a rerun keeps only the score files whose recorded signature (input, backbone and
# tokenizer digests, settings) matches this run's, and redoes those of an earlier backbone.
score_anomalies() {
  local p inputs=""
  for p in $SM_PROCESSES $ANOMALY_SIGNALS $PLANTED_TAILS; do inputs="$inputs $DATA/${p}_s2.h5"; done
  python -m finetune.anomaly score --backbone "$1" --tokenizer "$RUN/tokenizer" --input $inputs --out "$2/" \
    --quiet 2>&1 | tail -2 | tee -a "$RESULTS/anomaly.log"
  python benchmarks/anomaly_table.py --events "$DATA" --scores "$2" --background $SM_PROCESSES \
    --mix ttbar=24000 wjets=18000 ww=5000 single_top_t=6000 single_top_s=2500 tw_proxy=5000 \
    --signals $ANOMALY_SIGNALS $PLANTED_TAILS --out "$RESULTS/anomaly_table.json" --note "$3" \
    | tee "$RESULTS/anomaly_table.log"
}
# generation_from_scratch BACKBONE FOLDER: 10,000 ttbar events sampled by BACKBONE (with RUN/tokenizer) into
# FOLDER, once with each decoding (centroid, continuous, mean: MODES), each against DATA/ttbar_s1.h5 (W1 over the
# floor: RESULTS/w1_MODE.json and a plot); then BACKBONE's decoding of real events' own tokens (decode_fidelity.py)
generation_from_scratch() {
  local mode
  log "generation: centroid, continuous and mean decoding"
  for mode in ${MODES:-centroid continuous mean}; do
    [ -f "$2/synthetic_ttbar_$mode.h5" ] || python sample.py --backbone "$1" --tokenizer "$RUN/tokenizer" --events 10000 \
        --process ttbar --out "$2/synthetic_ttbar_$mode.h5" --seed 1 --decode $mode --device cpu 2>&1 | tail -1 \
        | tee -a "$RESULTS/sample.log"
    python -m backbone.evaluate --real "$DATA/ttbar_s1.h5" --generated "$2/synthetic_ttbar_$mode.h5" \
      --out "$2/eval_$mode" > "$RESULTS/evaluate_$mode.log" 2>&1
    cp "$2/eval_$mode/w1.json" "$RESULTS/w1_$mode.json"
    cp "$2/eval_$mode/real_vs_generated.png" "$RESULTS/real_vs_generated_$mode.png"
  done
  python benchmarks/decode_fidelity.py --backbone "$1" --tokenizer "$RUN/tokenizer" \
    --events "$DATA/ttbar_s1.h5" --n 10000 --out "$RESULTS/decode_fidelity.json" | tee "$RESULTS/decode_fidelity.log"
}
# data_efficiency VARIANT: the 0t..4t table (RUN/tokenizer; the SM processes and the three- and four-top proxies,
# seed-1 files to train, seed-2 to test) fine-tuned from the backbone RUN/VARIANT, into
# RESULTS/data_efficiency_VARIANT.json
data_efficiency() {
  local p train="" test=""
  for p in $SM_PROCESSES ttt_proxy tttt_proxy; do train="$train $DATA/${p}_s1.h5"; test="$test $DATA/${p}_s2.h5"; done
  log "data efficiency (0t..4t): $1"
  python -m finetune.data_efficiency --backbone "$RUN/$1" --tokenizer "$RUN/tokenizer" --train $train --test $test \
    --sizes ${SIZES:-100 1000 10000} --seeds ${SEEDS:-0} --out "$RUN/data_efficiency_$1" --quiet \
    --data.max_events_per_file=3000 --train.epochs=8 --train.min_steps=300 --train.patience=3 \
    > "$RESULTS/data_efficiency_$1.log" 2>&1
  cp "$RUN/data_efficiency_$1/data_efficiency.json" "$RESULTS/data_efficiency_$1.json"
}
# pretrain_cpu NAME SEED [ARGUMENTS...]: the event-cpu recipe on RUN/tokens.h5 into RUN/NAME, THREADS threads
# (default 1: two such trainings share the 2 cores), unless RUN/NAME holds a trained backbone
pretrain_cpu() {
  local name=$1 seed=$2; shift 2
  log "pretrain $name"
  [ -f "$RUN/$name/config.json" ] || OMP_NUM_THREADS=${THREADS:-1} python -m backbone.pretrain \
    --config configs/backbone/event-cpu.yaml --data.train="$RUN/tokens.h5" --train.seed="$seed" "$@" \
    --out="$RUN/$name" --quiet > "$RUN/pretrain_$name.log" 2>&1
}
# measure_generation BACKBONE NAME GUIDANCE [TOP_P]: 5,000 generated events per process against the held-out
# store (STORE, default runs/anom/test_tokens.h5) and the s1 samples, each object type's codes from its TOP_P
# nucleus (default 1: all) ->
# benchmarks/results/conditional_generation_NAME_guidanceGUIDANCE[_top_pTOP_P].json
measure_generation() {
  local top_p=${4:-1} tag=$2_guidance$3
  [ "$top_p" = 1 ] || tag=${tag}_top_p$top_p
  log "measure $2 at guidance $3, top-p $top_p"
  OMP_NUM_THREADS=1 python benchmarks/conditional_generation.py --backbone "$1" --tokenizer runs/anom/tokenizer \
    --store "${STORE:-runs/anom/test_tokens.h5}" --real $(sm_files "$ANOM" 1) --events 5000 --guidance "$3" \
    --top-p "$top_p" \
    --out "benchmarks/results/conditional_generation_$tag.json" > "$RUN/conditional_$tag.log" 2>&1
}
