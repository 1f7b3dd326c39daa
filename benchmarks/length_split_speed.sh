#!/usr/bin/env bash
# The cost of uniform batches on the CPU, and what data.length_split takes back: seconds per step of the
# event-cpu recipe on the 242,000-event store (conditional_more_data.sh) with length-sorted batches
# (length_bucket 50), uniform batches (1), and uniform batches run in 4 and 8 slices sorted by length.
#   bash benchmarks/length_split_speed.sh    # THREADS (default 2) threads, STEPS (default 60) steps each: about 10 min
# Writes benchmarks/results/length_split_speed.json.
set -euo pipefail
STORE=${STORE:-runs/more/tokens.h5}
STEPS=${STEPS:-60}
THREADS=${THREADS:-2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
runs=()
for spec in 50:1 1:1 1:4 1:8; do
  IFS=: read -r bucket split <<< "$spec"
  runs+=("$TMP/b${bucket}_s$split")
  OMP_NUM_THREADS=$THREADS python -m backbone.pretrain --config configs/backbone/event-cpu.yaml --data.train="$STORE" \
    --train.seed=0 --train.max_steps="$STEPS" --train.eval_every="$STEPS" --data.length_bucket="$bucket" \
    --data.length_split="$split" --out="${runs[-1]}" --quiet > /dev/null
done
python - "$THREADS" "${runs[@]}" <<'PY'
import json, sys
from pathlib import Path

rows = []
for folder in map(Path, sys.argv[2:]):
    data = json.loads((folder / "config.json").read_text())["train_config"]["data"]
    loop = json.loads((folder / "checkpoint" / "state.json").read_text())["loop"]
    rows.append({"length_bucket": data["length_bucket"], "length_split": data["length_split"], "steps": loop["step"],
                 "seconds_per_step": loop["seconds"] / loop["step"], "tokens_per_s": loop["tokens"] / loop["seconds"]})
    print(f"length_bucket {rows[-1]['length_bucket']:>2}, length_split {rows[-1]['length_split']}: "
          f"{rows[-1]['seconds_per_step']:.3f} s/step, {rows[-1]['tokens_per_s']:,.0f} tokens/s")
Path("benchmarks/results/length_split_speed.json").write_text(json.dumps({"threads": int(sys.argv[1]), "runs": rows}, indent=2))
PY
