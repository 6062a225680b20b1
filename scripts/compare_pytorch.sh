#!/usr/bin/env bash
# quantrec against PyTorch on the Kaggle, MLPerf-v1 and DLRM-v2 (MLPerf Inference, multi-hot) shapes, at
# batch 64 and 1024, 1 and 2 threads: the numbers of the README's benchmark table. Optional, never run in CI.
#
# Needs the peers' environment (../shared/peers/setup.sh; PEERS_PYTHON names another interpreter) and a
# release build of quantrec (QUANTREC names the binary; default: $CARGO_TARGET_DIR or ./target).
# The DLRM-v2 rows run the identical model on identical inputs: dlrmv2_bench.py --export writes the f32 state
# dict and 32,768 multi-hot rows, `quantrec import` reads the state dict, `quantrec quantize` finds the
# automatic plan (per-row dynamic / static int8, row-wise tables) on those rows, and `bench model --inputs`
# rotates through batch-size slices of them. The Kaggle and MLPerf-v1 rows use random models of the peer's
# shapes on both sides (`bench model --synthetic`; "plan" there is PyTorch's recipe: dynamic int8 + 4-bit).
#
# A shared machine is noisy: the script interleaves rounds (peers, then ours, ROUNDS times) and prints the
# median over rounds of each ratio taken within a round, never ratios of figures from different runs.
#
# Usage: scripts/compare_pytorch.sh [OUT_DIR]     env: ROUNDS (3), THREADS ("1 2"), QUICK=1 (shorter timings
# of ours; the peers always time batch 64 and 1024)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${QUANTREC_SHARED:-$ROOT/../shared}
PY=${PEERS_PYTHON:-$HOME/.cache/quantrec-peers/bin/python}
QR=${QUANTREC:-${CARGO_TARGET_DIR:-$ROOT/target}/release/quantrec}
OUT=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/compare}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
QUICK=${QUICK:-}
PLAN=${PLAN:-auto}   # or a preset, or a plan JSON (static parameters are calibrated on the exported rows)
mkdir -p "$OUT"
[ -x "$QR" ] || { echo "no quantrec binary at $QR (cargo build --release, or set QUANTREC)" >&2; exit 1; }
"$PY" -c "import torch" || { echo "no PyTorch in $PY (run $SHARED/peers/setup.sh)" >&2; exit 1; }
ours_quick=${QUICK:+--quick}

V2="$OUT/dlrmv2"
if [ ! -e "$V2/dlrmv2.inputs.safetensors" ]; then
  echo "== exporting the DLRM-v2 model and 32768 multi-hot rows" >&2
  "$PY" "$SHARED/peers/dlrmv2_bench.py" --quick --export "$V2" --export-rows 32768 > /dev/null
fi
IN="$V2/dlrmv2.inputs.safetensors"
if [ ! -e "$V2/f32.safetensors" ]; then
  "$QR" import "$V2/dlrmv2.safetensors" -o "$V2/f32.safetensors"
  "$QR" predict "$V2/f32.safetensors" --tables-in-memory --inputs "$IN" -o "$V2/f32.predictions.safetensors"
fi
if [ ! -e "$V2/auto.safetensors" ]; then
  echo "== quantize --plan $PLAN on the exported rows" >&2
  "$QR" quantize "$V2/f32.safetensors" --calib "$IN" --eval "$IN" --calib-rows 4096 --eval-rows 16384 \
    --sensitivity-rows 4096 --plan "$PLAN" -o "$V2/auto.safetensors" > "$V2/quantize.txt"
fi

: > "$OUT/peers.jsonl"
: > "$OUT/ours.jsonl"
"$QR" bench kernels --filter peak --json - | grep '^{' > "$OUT/peak.jsonl" || true
for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    echo "== round $round, $t thread(s): PyTorch" >&2
    for peer in dlrm_bench.py dlrmv2_bench.py; do
      "$PY" "$SHARED/peers/$peer" --threads "$t" \
        | sed "s/^{/{\"round\": $round, \"threads\": $t, /" >> "$OUT/peers.jsonl"
    done
    echo "== round $round, $t thread(s): quantrec" >&2
    for shape in kaggle mlperf; do
      for plan in f32 quantized; do
        "$QR" bench model --synthetic "$shape" --plan "$plan" --batch 64,1024 --threads "$t" $ours_quick \
          --json - | grep '^{' | sed "s/^{/{\"round\": $round, \"variant\": \"$plan\", /" >> "$OUT/ours.jsonl"
      done
    done
    for variant in f32 auto; do
      "$QR" bench model "$V2/$variant.safetensors" --tables-in-memory --inputs "$IN" --batch 64,1024 \
        --threads "$t" $ours_quick --json - | grep '^{' \
        | sed "s/^{/{\"round\": $round, \"variant\": \"$variant\", /" >> "$OUT/ours.jsonl"
    done
  done
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
out = sys.argv[1]
peers = [json.loads(l) for l in open(f"{out}/peers.jsonl") if l.startswith("{")]
ours = [json.loads(l) for l in open(f"{out}/ours.jsonl") if l.startswith("{")]
peak = [json.loads(l) for l in open(f"{out}/peak.jsonl") if l.startswith("{")]
def peer_rate(r, t, op, config, b):
    for p in peers:
        if p["round"] == r and p["threads"] == t and p["op"] == op and p["shape"]["config"] == config \
                and p["shape"]["batch"] == b:
            return p["rate"]
def our_rate(r, t, variant, model, b):
    for o in ours:
        if o["round"] == r and o["variant"] == variant and o["shape"]["threads"] == t \
                and o["shape"]["model"] == model and o["shape"]["batch"] == b:
            return o["rate"]
rows = [("Kaggle", "kaggle", "dlrm", "kaggle-f32", "kaggle-quantized", "f32", "quantized"),
        ("MLPerf-v1", "mlperf", "dlrm", "mlperf-f32", "mlperf-quantized", "f32", "quantized"),
        ("DLRM-v2", "dlrmv2", "dlrmv2", "f32", "auto", "f32", "auto")]
rounds = sorted({o["round"] for o in ours})
threads = sorted({o["shape"]["threads"] for o in ours})
print("| shape | batch | threads | PyTorch f32 | PyTorch quantized | quantrec f32 | quantrec plan "
      "| plan / PyTorch q. | plan / PyTorch f32 | f32 / PyTorch f32 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, config, prefix, m_f32, m_plan, v_f32, v_plan in rows:
    for b in (64, 1024):
        for t in threads:
            cols = {k: [] for k in ("pf", "pq", "qf", "qp", "r1", "r2", "r3")}
            for r in rounds:
                pf = peer_rate(r, t, f"{prefix}_f32", config, b)
                pq = peer_rate(r, t, f"{prefix}_quantized", config, b)
                qf = our_rate(r, t, v_f32, m_f32, b)
                qp = our_rate(r, t, v_plan, m_plan, b)
                if None in (pf, pq, qf, qp):
                    continue
                for k, v in zip(cols, (pf, pq, qf, qp, qp / pq, qp / pf, qf / pf)):
                    cols[k].append(v)
            if not cols["pf"]:
                continue
            med = {k: statistics.median(v) for k, v in cols.items()}
            print(f"| {name} | {b} | {t} | {med['pf']:,.0f} | {med['pq']:,.0f} | {med['qf']:,.0f} "
                  f"| {med['qp']:,.0f} | {med['r1']:.2f}× | {med['r2']:.2f}× | {med['r3']:.2f}× |")
print(f"\nrows/s, median over {len(rounds)} interleaved round(s); ratios are medians of per-round ratios.")
for p in peak:
    print(f"peak: {p['op']} {p['rate']:.3g} {p['unit']}")
EOF
