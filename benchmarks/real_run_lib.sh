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
