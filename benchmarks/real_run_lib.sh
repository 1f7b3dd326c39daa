# Shared by the real-run scripts (sourced; needs $RESULTS).
log() { echo "$(date +%T) $*" | tee -a "$RESULTS/steps.log"; }
# reuse STEP SOURCE DEST: when SOURCE is set (a trained tokenizer or a token store), copy it to DEST and
# succeed; otherwise fail, so that `reuse ... || { make it; }` makes it.
reuse() {
  [ -n "$2" ] || { log "$1"; return 1; }
  log "$1: reusing $2"
  rm -rf "$3"; cp -r "$2" "$3" || exit 1
}
