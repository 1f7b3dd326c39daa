#!/usr/bin/env bash
# Issue 28: do conditional samples follow their process with the factorized output (a type head: p(type)
# x p(code | type)) where one softmax over the 8,196 tokens leaks ~8% of each first object onto types the
# process never starts with? The same backbone trained twice on the same store (flat, type head), then
# benchmarks/conditional_generation.py on each; with REF_STEPS > 0 also the reference size (8 x 512).
#   PACK=1 bash benchmarks/type_head_study.sh     # here: copy the bundled run's tokenizer, stores and
#                                                 # event files into .gpu28/ (name .gpu28 and .wheels in carry)
#   bash benchmarks/type_head_study.sh            # on the GPU machine (results also to $OUT)
#   DEVICE=cpu STEPS=20 REF_STEPS=0 EVENTS=200 bash benchmarks/type_head_study.sh   # a check of the script
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:-.gpu28}
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
if [ "${PACK:-0}" = 1 ]; then
  grep -qx '/.gpu28/' .git/info/exclude 2>/dev/null || echo '/.gpu28/' >> .git/info/exclude
  rm -rf "$SRC" && mkdir -p "$SRC/tokenizer"
  cp runs/bundled/tokenizer/{config.json,model.safetensors} "$SRC/tokenizer/"
  cp runs/bundled/tokens.h5 runs/bundled/test_tokens.h5 "$SRC/"
  for p in $SM; do cp "data/bundled/${p}_s1.h5" "$SRC/"; done
  du -sh "$SRC"; exit 0
fi
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/type_head}
STEPS=${STEPS:-2000}          # the CPU size (configs/backbone/event-cpu.yaml), as the bundled model
REF_STEPS=${REF_STEPS:-3000}  # the reference size (configs/backbone/event.yaml), 0 to skip
HEADS=${HEADS:-"false true"}
EVENTS=${EVENTS:-5000}        # generated per process
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WHEELS=${WHEELS:-.wheels}  # the project's wheels (pythia8mc and fastjet are not needed here)
if ls "$WHEELS"/*.whl >/dev/null 2>&1 && ! python3 -c "import vector_quantize_pytorch, uproot" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    || { echo "installing $WHEELS failed" >&2; exit 2; }
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
mkdir -p "$RUN"
REAL=$(for p in $SM; do echo "$SRC/${p}_s1.h5"; done)

# study NAME CONFIG STEPS TYPE_HEAD [more overrides]: pretrain, then measure
study() {
  local name=$1 config=$2 steps=$3 head=$4; shift 4
  local start=$(date +%s)
  python3 -m backbone.pretrain --config "$config" --data.train="$SRC/tokens.h5" --data.val="$SRC/test_tokens.h5" \
    --train.max_steps="$steps" --train.eval_every="$steps" --train.seed=0 --train.device="$DEVICE" \
    --model.type_head="$head" --out="$RUN/$name" --quiet "$@" > "$RUN/$name.log" 2>&1 \
    || { echo "$name: pretraining failed"; tail -5 "$RUN/$name.log"; return 1; }
  python3 benchmarks/conditional_generation.py --backbone "$RUN/$name" --tokenizer "$SRC/tokenizer" \
    --store "$SRC/test_tokens.h5" --real $REAL --events "$EVENTS" --device "$DEVICE" --out "$RUN/$name.json" \
    2>&1 | tee -a "$RUN/$name.log" | grep -v "^saved" || { echo "$name: measuring failed"; return 1; }
  echo "$name: $(( $(date +%s) - start )) s"
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then cp "$RUN/$name.json" "$OUT/"; fi
}
for head in $HEADS; do
  echo "== CPU size, type_head=$head, $STEPS steps on $DEVICE"
  study "cpu_size_type_head_$head" configs/backbone/event-cpu.yaml "$STEPS" "$head"
done
if [ "$REF_STEPS" -gt 0 ]; then
  echo "== reference size, type_head=true, $REF_STEPS steps on $DEVICE"
  study reference_type_head_true configs/backbone/event.yaml "$REF_STEPS" true --train.warmup_steps=200
fi
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then tar czf "$OUT/type_head_logs.tgz" "$RUN"/*.log; fi
