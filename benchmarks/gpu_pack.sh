#!/usr/bin/env bash
# Packs into .gpu/ what the reference-size GPU runs need and cannot make fast enough within a device lease:
# the real runs' tokenizers and token stores (generation and tokenizing stay on the CPU), the first
# 5,000 events of each seed-1 file (fine-tuning and the weak-supervision reference read no more), the seed-2 test files, and 5,000 of each
# jet sample. About 50 MB with .wheels-lite/; name both in the device call's `carry`:
#   bash benchmarks/gpu_pack.sh
#   device: python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .wheels-lite/*.whl && export PYTHONPATH=/tmp/site:$PWD && bash benchmarks/gpu_run.sh
set -euo pipefail
D=${DATA:-data/real}
OUT=.gpu
SM="ttbar wjets ww single_top_t single_top_s tw_proxy"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf "$OUT" && mkdir -p "$OUT/data"
for p in $SM ttt_proxy tttt_proxy; do
  python -m events.convert "$D/${p}_s1.h5" "$OUT/data/${p}_s1.h5" --max-events 5000 > /dev/null
done
for p in $SM ttt_proxy tttt_proxy zprime_ttbar top_jets qcd_jets; do cp "$D/${p}_s2.h5" "$OUT/data/"; done
for p in top_jets qcd_jets; do python -m events.convert "$D/${p}_s1.h5" "$OUT/data/${p}_s1.h5" --max-events 5000 > /dev/null; done
for run in real real_constituent; do
  mkdir -p "$OUT/$run/tokenizer"
  cp runs/$run/tokenizer/{config.json,model.safetensors,metrics.json,train_config.json} "$OUT/$run/tokenizer/"
  cp runs/$run/tokens.h5 "$OUT/$run/tokens.h5"
done
du -sh "$OUT"
