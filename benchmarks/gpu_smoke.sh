#!/usr/bin/env bash
# The README's pipeline at a small size on the GPU, from a fresh checkout: the first thing to run on a GPU
# machine, to catch what CPU tests cannot (device mix-ups, compilation, bf16, CUDA graphs). One line per
# stage: seconds, rate, exit code; all lines also in $RUN/smoke.tsv and $RUN/smoke.json (and in $OUT, where
# the device tool collects files). A failed stage is reported and the stages that need it are skipped.
#
#   On a bare GPU machine (Python 3.12, torch with CUDA, no network), with the project's wheels carried in
#   .wheels/ (cp ../shared/wheels-py312/*.whl .wheels/; name .wheels in the device call's carry):
#     bash benchmarks/gpu_smoke.sh
#   The same commands on this machine's CPU (a check of the script itself, about 3 minutes on 2 cores):
#     DEVICE=cpu CONFIG=configs/backbone/event-cpu.yaml EVENTS=300 STEPS=20 SAMPLE=500 bash benchmarks/gpu_smoke.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/gpu_smoke}
EVENTS=${EVENTS:-2000}       # per Standard Model process
CONFIG=${CONFIG:-configs/backbone/event.yaml}  # the reference size, compiled
STEPS=${STEPS:-300}          # pretraining steps
SAMPLE=${SAMPLE:-20000}      # events sampled
EVAL_EVERY=${EVAL_EVERY:-$STEPS}  # validation (and a logged cumulative tokens/s) every this many steps
WORKERS=${WORKERS:-$(nproc)}
PROCESSES="ttbar wjets ww single_top_t tw_proxy"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ls .wheels/*.whl >/dev/null 2>&1 && ! python3 -c "import pythia8mc, fastjet, uproot, vector_quantize_pytorch" 2>/dev/null
then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .wheels/*.whl \
    || { echo "installing .wheels/ failed" >&2; exit 2; }
  # pip --target leaves Pythia's data where Pythia does not look for it
  export PYTHONPATH="$PYTHONPATH:/tmp/site" PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
fi
rm -rf "$RUN" && mkdir -p "$RUN/data"
DEVICE_NAME=$(python3 -c "import torch; print(torch.cuda.get_device_name() if '$DEVICE'.startswith('cuda') and torch.cuda.is_available() else 'cpu ($(nproc) cores)')")
printf 'stage\tseconds\trate\texit\n' > "$RUN/smoke.tsv"
FAILED=""

# stage NAME COUNT UNIT NEEDS -- COMMAND...: runs COMMAND (its output in $RUN/NAME.log) unless a stage it
# NEEDS failed, and prints seconds, COUNT/seconds UNIT/s and the exit code
stage() {
  local name=$1 count=$2 unit=$3 needs=$4; shift 5
  local code seconds rate
  if [ -n "$needs" ] && [[ " $FAILED " == *" $needs "* ]]; then
    code=skipped seconds=- rate=-
    FAILED="$FAILED $name"
  else
    local start=$(date +%s.%N)
    "$@" > "$RUN/$name.log" 2>&1
    code=$?
    seconds=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    rate=$(python3 -c "r = $count / max($seconds, 1e-9); print(f'{r:,.0f} $unit/s' if r >= 10 else f'{r:.2g} $unit/s')")
    if [ "$code" != 0 ]; then FAILED="$FAILED $name"; tail -5 "$RUN/$name.log" | sed "s/^/  $name: /" >&2; fi
  fi
  printf '%-10s %8s s  %-22s exit %s\n' "$name" "$seconds" "$rate" "$code"
  printf '%s\t%s\t%s\t%s\n' "$name" "$seconds" "$rate" "$code" >> "$RUN/smoke.tsv"
}

generate_all() {
  for p in $PROCESSES; do
    python3 -m events.generate --process "$p" --events "$EVENTS" --workers "$WORKERS" --seed 1 --quiet \
      --out "$RUN/data/$p.h5" || return
  done
  python3 -m events.generate --process zprime_ttbar --events "$((EVENTS / 4))" --workers "$WORKERS" --seed 2 --quiet \
    --out "$RUN/data/signal.h5"
}
FILES=$(for p in $PROCESSES; do printf '%s,' "$RUN/data/$p.h5"; done)
N=$(( $(echo $PROCESSES | wc -w) * EVENTS ))

echo "gpu_smoke: $DEVICE_NAME, $(date -u +%Y-%m-%dT%H:%MZ), $N events, $STEPS steps"
stage generate "$N" events "" -- generate_all
stage tokenizer "$N" events generate -- python3 -m tokenizer.train --config configs/tokenizer/event.yaml \
  "--data.files=[${FILES%,}]" --train.epochs=3 --train.device="$DEVICE" --compare_autoencoder=false \
  --information_loss=false --out="$RUN/tokenizer" --quiet
stage tokenize "$N" events tokenizer -- python3 -m tokenizer.tokenize --tokenizer "$RUN/tokenizer" \
  --input $(for p in $PROCESSES; do echo "$RUN/data/$p.h5"; done) --out "$RUN/tokens.h5" --features --device "$DEVICE" --quiet
stage pretrain "$STEPS" steps tokenize -- python3 -m backbone.pretrain --config "$CONFIG" \
  --data.train="$RUN/tokens.h5" --train.max_steps="$STEPS" --train.eval_every="$EVAL_EVERY" --train.warmup_steps=30 \
  --train.device="$DEVICE" --out="$RUN/backbone" --quiet
stage score "$((EVENTS / 4))" events pretrain -- python3 -m finetune.anomaly score --backbone "$RUN/backbone" \
  --tokenizer "$RUN/tokenizer" --input "$RUN/data/signal.h5" --out "$RUN/scores.h5" --device "$DEVICE" --quiet
stage sample "$SAMPLE" events pretrain -- python3 sample.py --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" \
  --events "$SAMPLE" --process ttbar --out "$RUN/sampled.h5" --device "$DEVICE"
# classifier-free guidance: two streams per sequence through one CUDA graph
stage guided "$((SAMPLE / 4))" events pretrain -- python3 sample.py --backbone "$RUN/backbone" --tokenizer "$RUN/tokenizer" \
  --events "$((SAMPLE / 4))" --process ttbar --guidance 1.5 --out "$RUN/guided.h5" --device "$DEVICE"

python3 - "$RUN" "$DEVICE_NAME" <<'EOF'
import csv, json, sys, datetime
run, device = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{run}/smoke.tsv"), delimiter="\t"))
json.dump({"device": device, "date": datetime.date.today().isoformat(), "stages": rows}, open(f"{run}/smoke.json", "w"),
          indent=1)
EOF
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then cp "$RUN/smoke.tsv" "$RUN/smoke.json" "$OUT/"; fi
[ -z "$FAILED" ] || { echo "failed:$FAILED" >&2; exit 1; }
