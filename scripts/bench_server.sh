#!/usr/bin/env bash
# Reproduces the "Serving benchmarks" figures of README.md on this machine:
#   (a) the largest Poisson rate with p99 <= 10 ms (quantrec loadgen --find-max-rate), HTTP binary and gRPC;
#   (b) server throughput at saturation vs in-process `quantrec bench model` at the same batch and threads,
#       with two references: one 256-row batch split over $THREADS threads (`--threads $THREADS`), and
#       $THREADS independent 256-row batches at once, one per thread ($THREADS concurrent `--threads 1`
#       processes, rates summed) -- the latter is what the server does with $THREADS requests in flight
#       (--max-batch 256: one request is one model call, run on one pool thread), so it is the fair one;
#       plus the server's CPU per row vs bench model's cpu_rate (less sensitive to other load);
#   (c) the same load from independent tools, on equal terms: oha (HTTP) and loadgen at the SAME fixed
#       offered rate below saturation (achieved rate, p50, p99), and at saturation with the same
#       concurrency and one client runtime thread each (oha --worker-threads 1, loadgen
#       --client-threads 1); h2load (gRPC, pre-encoded body, 1 thread) at saturation;
#   (d) the same saturation runs with the load generator off the server's core: server pinned to
#       core 0 (--threads 1 --io-threads 1), loadgen/h2load pinned to core 1, against in-process
#       `bench model --threads 1` on core 0 (needs taskset), in $ROUNDS interleaved rounds, medians of
#       the per-round ratios;
#   plus `bench kernels --filter peak` for the machine's peak.
# Client and server share the machine's cores: a tool that spends more CPU per request leaves the server
# less, so compare tools at the same thread count, and prefer the fixed-rate comparison.
# Models: the synthetic default model of `quantrec demo --quick` (f32 and quantized), 256-candidate requests.
# Usage: scripts/bench_server.sh [OUT_DIR]   (env: BIN, THREADS=2, DURATION=10, CONC=8, P99_MS=10,
#        MAXRATE_DURATION=5 (per trial), SAT_RATE=20000, FIXED_FRACTION=0.5 (of loadgen's saturation
#        rate, for the fixed-rate comparison), ROUNDS=3 (interleaved pinned rounds), DEMO_DIR)
# Needs: python3; oha (`cargo install oha --no-default-features --features native-tls`) and h2load
# (Debian nghttp2-client) for (c), skipped with a note when absent. Servers listen on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/bench-server-out}
BIN=${BIN:-$ROOT/target/release/quantrec}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
CONC=${CONC:-8}
P99_MS=${P99_MS:-10}
MAXRATE_DURATION=${MAXRATE_DURATION:-5}
# Offered rate of the saturation runs: above capacity, but not so far that queued tasks cost the client.
SAT_RATE=${SAT_RATE:-20000}
FIXED_FRACTION=${FIXED_FRACTION:-0.5}
# Interleaved rounds of the pinned comparison (d).
ROUNDS=${ROUNDS:-3}
CAND=256
HTTP_PORT=${HTTP_PORT:-18000}
GRPC_PORT=${GRPC_PORT:-18001}
mkdir -p "$OUT"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p quantrec)

DEMO_DIR=${DEMO_DIR:-$OUT/demo}
if [ ! -f "$DEMO_DIR/model-quantized.safetensors" ]; then
  "$BIN" demo --quick --skip-kernels --out "$DEMO_DIR" > "$OUT/demo.log"
fi

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/summary.txt"
"$BIN" bench kernels --quick --filter peak --json "$OUT/peak.jsonl" | tee -a "$OUT/summary.txt"

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

# User + system CPU seconds a process has used so far.
cpu_s() { python3 -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1"; }

SERVER=""
stop_server() { if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; fi; }
trap stop_server EXIT

for variant in quantized f32; do
  model="$DEMO_DIR/model-$variant.safetensors"
  repo="$OUT/repo-$variant"
  mkdir -p "$repo/dlrm/1"
  cp "$model" "$repo/dlrm/1/model.safetensors"
  # One request is one model call of 256 rows (--max-batch 256), on $THREADS compute threads.
  "$BIN" serve --models "$repo" --http "$HTTP_PORT" --grpc "$GRPC_PORT" --threads "$THREADS" \
    --max-batch "$CAND" > "$OUT/serve-$variant.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    python3 - "$HTTP_PORT" <<'PY' && break || sleep 0.2
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready", timeout=1)
PY
  done
  H="http://127.0.0.1:$HTTP_PORT"; G="http://127.0.0.1:$GRPC_PORT"
  common=(--model dlrm --candidates "$CAND" --duration "$DURATION" --json)

  echo "== $variant" | tee -a "$OUT/summary.txt"
  # (b) in-process references: the same model and batch; one batch over $THREADS threads, and
  # $THREADS independent batches at once (one single-threaded process per thread, rates summed).
  "$BIN" bench model "$model" --batch "$CAND" --threads "$THREADS" --json "$OUT/bench-model-$variant.jsonl" > /dev/null
  inproc=$(python3 -c "import json,sys; print(max(json.loads(l)['rate'] for l in open(sys.argv[1])))" "$OUT/bench-model-$variant.jsonl")
  echo "in-process bench model, one batch of $CAND over $THREADS threads: $inproc rows/s" | tee -a "$OUT/summary.txt"
  pids=()
  for i in $(seq "$THREADS"); do
    "$BIN" bench model "$model" --batch "$CAND" --threads 1 --json "$OUT/bench-model-$variant-par$i.jsonl" > /dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  inpar=$(python3 -c "import json,sys; print(sum(max(json.loads(l)['rate'] for l in open(f)) for f in sys.argv[1:]))" "$OUT"/bench-model-$variant-par*.jsonl)
  echo "in-process bench model, $THREADS independent batches of $CAND at once (--threads 1 x $THREADS): $inpar rows/s" | tee -a "$OUT/summary.txt"

  # (b)+(c) saturation: $CONC requests in flight, offered far above capacity.
  # The server's CPU time over each run too: on a loaded machine, CPU per row is the fairer
  # comparison with bench model's cpu_rate (rows per CPU second).
  c0=$(cpu_s "$SERVER")
  "$BIN" loadgen --url "$H" "${common[@]}" --binary --rate "$SAT_RATE" --concurrency-limit "$CONC" > "$OUT/sat-http-$variant.json"
  c1=$(cpu_s "$SERVER")
  "$BIN" loadgen --url "$G" "${common[@]}" --grpc --rate "$SAT_RATE" --concurrency-limit "$CONC" > "$OUT/sat-grpc-$variant.json"
  c2=$(cpu_s "$SERVER")
  inproc_cpu=$(python3 -c "import json,sys; print(max(json.loads(l)['cpu_rate'] for l in open(sys.argv[1])))" "$OUT/bench-model-$variant.jsonl")
  # rows per CPU second of the single-threaded batches (no split of one batch over threads)
  inpar_cpu=$(python3 -c "import json,sys; r=[max(json.loads(l)['cpu_rate'] for l in open(f)) for f in sys.argv[1:]]; print(sum(r)/len(r))" "$OUT"/bench-model-$variant-par*.jsonl)
  for p in http grpc; do
    if [ $p = http ]; then used=$(python3 -c "print($c1 - $c0)"); else used=$(python3 -c "print($c2 - $c1)"); fi
    rows=$(json "$OUT/sat-$p-$variant.json" "d['ok'] * d['candidates']")
    echo "server CPU over the $p run: $used s for $rows rows = $(python3 -c "print(f'{$rows/max($used,1e-9):.0f}')") rows per CPU second vs in-process $(python3 -c "print(f'{$inproc_cpu:.0f}')") ($(python3 -c "print(f'{$rows/max($used,1e-9)/$inproc_cpu:.1%}')")), vs single-threaded batches $(python3 -c "print(f'{$inpar_cpu:.0f}')") ($(python3 -c "print(f'{$rows/max($used,1e-9)/$inpar_cpu:.1%}')"))" | tee -a "$OUT/summary.txt"
  done
  for p in http grpc; do
    r=$(json "$OUT/sat-$p-$variant.json" "round(d['rows_per_s'])")
    q=$(json "$OUT/sat-$p-$variant.json" "round(d['achieved_qps'],1)")
    e=$(json "$OUT/sat-$p-$variant.json" "sum(d['errors'].values())")
    echo "loadgen $p saturation (in flight $CONC): $q req/s = $r rows/s = $(python3 -c "print(f'{$r/$inproc:.1%}')") of in-process one batch over $THREADS threads, $(python3 -c "print(f'{$r/$inpar:.1%}')") of $THREADS independent batches; errors $e" | tee -a "$OUT/summary.txt"
  done

  # (c) independent tools on the same requests.
  "$BIN" loadgen --url "$H" --model dlrm --candidates "$CAND" --binary --dump-request "$OUT/body-http.bin" > "$OUT/body-http.json"
  "$BIN" loadgen --url "$G" --model dlrm --candidates "$CAND" --grpc --dump-request "$OUT/body-grpc.bin" > /dev/null
  hl=$(json "$OUT/body-http.json" "d['header_len']")
  if command -v oha > /dev/null; then
    oha_run() { # OUT_FILE [extra oha options...]: the binary HTTP request, $CONC connections, 1 thread
      local f=$1; shift
      oha -z "${DURATION}s" -c "$CONC" --worker-threads 1 --no-tui --output-format json -m POST "$@" \
        -H "content-type: application/octet-stream" -H "inference-header-content-length: $hl" \
        -D "$OUT/body-http.bin" "$H/v2/models/dlrm/infer" > "$f"
    }
    # Saturation: the same concurrency and one client runtime thread, like the loadgen run above.
    oha_run "$OUT/oha-$variant.json"
    o=$(json "$OUT/oha-$variant.json" "round(d['summary']['requestsPerSec'],1)")
    ok=$(json "$OUT/oha-$variant.json" "d['statusCodeDistribution']")
    l=$(json "$OUT/sat-http-$variant.json" "d['achieved_qps']")
    echo "oha HTTP saturation (-c $CONC, 1 worker thread): $o req/s (status codes $ok); loadgen/oha = $(python3 -c "print(f'{$l/$o:.3f}')")" | tee -a "$OUT/summary.txt"
    # The same fixed offered rate below saturation for both (loadgen: Poisson arrivals; oha: evenly
    # paced, latency corrected for coordinated omission): achieved rate and latency quantiles.
    fixed=$(python3 -c "print(max(1, round($l * $FIXED_FRACTION)))")
    "$BIN" loadgen --url "$H" "${common[@]}" --binary --rate "$fixed" --concurrency-limit "$CONC" > "$OUT/fixed-http-$variant.json"
    oha_run "$OUT/oha-fixed-$variant.json" -q "$fixed" --latency-correction
    lq=$(json "$OUT/fixed-http-$variant.json" "f\"{d['achieved_qps']:.1f} req/s, p50 {d['latency']['p50_ms']:.2f} ms, p99 {d['latency']['p99_ms']:.2f} ms\"")
    oq=$(json "$OUT/oha-fixed-$variant.json" "f\"{d['summary']['requestsPerSec']:.1f} req/s, p50 {d['latencyPercentiles']['p50']*1e3:.2f} ms, p99 {d['latencyPercentiles']['p99']*1e3:.2f} ms (status codes {d['statusCodeDistribution']})\"")
    echo "fixed rate $fixed req/s (in flight <= $CONC): loadgen HTTP $lq; oha $oq" | tee -a "$OUT/summary.txt"
  else
    echo "oha not installed: (c) over HTTP skipped" | tee -a "$OUT/summary.txt"
  fi
  if command -v h2load > /dev/null; then
    n=$(python3 -c "print(max(100, int($(json "$OUT/sat-grpc-$variant.json" "d['achieved_qps']") * $DURATION)))")
    h2load -n "$n" -c 1 -t 1 -m "$CONC" -d "$OUT/body-grpc.bin" -H "content-type: application/grpc" -H "te: trailers" \
      "$G/inference.GRPCInferenceService/ModelInfer" > "$OUT/h2load-$variant.txt"
    hq=$(grep -oP 'finished in [0-9.]+m?s, \K[0-9.]+(?= req/s)' "$OUT/h2load-$variant.txt")
    st=$(grep -E '^requests:|^status codes:' "$OUT/h2load-$variant.txt" | tr '\n' ' ')
    l=$(json "$OUT/sat-grpc-$variant.json" "d['achieved_qps']")
    echo "h2load gRPC (1 connection, 1 thread, $CONC streams): $hq req/s ($st); loadgen/h2load = $(python3 -c "print(f'{$l/$hq:.3f}')")" | tee -a "$OUT/summary.txt"
  else
    echo "h2load not installed: (c) over gRPC skipped" | tee -a "$OUT/summary.txt"
  fi

  # (a) the largest Poisson rate with p99 <= $P99_MS ms.
  mr=(--model dlrm --candidates "$CAND" --duration "$MAXRATE_DURATION" --json)
  "$BIN" loadgen --url "$H" "${mr[@]}" --binary --find-max-rate --p99-ms "$P99_MS" --rate 20 > "$OUT/maxrate-http-$variant.json"
  "$BIN" loadgen --url "$G" "${mr[@]}" --grpc --find-max-rate --p99-ms "$P99_MS" --rate 20 > "$OUT/maxrate-grpc-$variant.json"
  for p in http grpc; do
    echo "loadgen $p largest rate with p99 <= $P99_MS ms (a missed rate is retried once): $(json "$OUT/maxrate-$p-$variant.json" "(d['max_rate'], d['best'] and d['best']['latency'])")" | tee -a "$OUT/summary.txt"
    echo "  trials (rate, p99 ms, passed, retry): $(json "$OUT/maxrate-$p-$variant.json" "[(round(t['rate']), t['p99_ms'], t['passed'], t['retry']) for t in d['trials']]")" | tee -a "$OUT/summary.txt"
  done
  stop_server

  # (d) the load generator off the server's core: server (one compute thread, one I/O thread)
  # pinned to core 0, loadgen and h2load pinned to core 1, against in-process bench model with
  # one thread on core 0. This is the server's own overhead, without the client taking its CPU.
  if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    taskset -c 0 "$BIN" serve --models "$repo" --http "$HTTP_PORT" --grpc "$GRPC_PORT" --threads 1 --io-threads 1 \
      --max-batch "$CAND" > "$OUT/serve-$variant-pinned.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
      python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/v2/health/ready', timeout=1)" "$H" 2> /dev/null && break || sleep 0.2
    done
    # $ROUNDS interleaved rounds (in-process, HTTP, gRPC): this machine's speed drifts between runs, so
    # each server run is compared with the in-process run just before it, and the median ratio is reported.
    ratios_http=(); ratios_grpc=()
    for round in $(seq "$ROUNDS"); do
      taskset -c 0 "$BIN" bench model "$model" --batch "$CAND" --threads 1 --json "$OUT/bench-model-$variant-pinned-$round.jsonl" > /dev/null
      pin_ip=$(python3 -c "import json,sys; print(max(json.loads(l)['rate'] for l in open(sys.argv[1])))" "$OUT/bench-model-$variant-pinned-$round.jsonl")
      echo "pinned round $round (server on core 0 with one compute and one I/O thread, clients on core 1): in-process bench model --threads 1 on core 0: $pin_ip rows/s" | tee -a "$OUT/summary.txt"
      for p in http grpc; do
        if [ $p = http ]; then url=$H; proto=--binary; else url=$G; proto=--grpc; fi
        c0=$(cpu_s "$SERVER")
        taskset -c 1 "$BIN" loadgen --url "$url" "${common[@]}" $proto --rate "$SAT_RATE" --concurrency-limit "$CONC" > "$OUT/pinned-$p-$variant-$round.json"
        c1=$(cpu_s "$SERVER")
        r=$(json "$OUT/pinned-$p-$variant-$round.json" "round(d['rows_per_s'])")
        q=$(json "$OUT/pinned-$p-$variant-$round.json" "round(d['achieved_qps'],1)")
        rows=$(json "$OUT/pinned-$p-$variant-$round.json" "d['ok'] * d['candidates']")
        ratio=$(python3 -c "print(f'{$r/$pin_ip:.4f}')")
        if [ $p = http ]; then ratios_http+=("$ratio"); else ratios_grpc+=("$ratio"); fi
        echo "pinned round $round loadgen $p saturation: $q req/s = $r rows/s = $(python3 -c "print(f'{$ratio:.1%}')") of in-process; server CPU $(python3 -c "print(f'{($c1-$c0)*1e6/max(1,$rows/$CAND):.0f}')") us per request vs in-process $(python3 -c "print(f'{$CAND*1e6/$pin_ip:.0f}')") us per batch" | tee -a "$OUT/summary.txt"
      done
      cp "$OUT/pinned-grpc-$variant-$round.json" "$OUT/pinned-grpc-$variant.json"
    done
    med() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.1%} (rounds: ' + ', '.join(f'{x:.1%}' for x in v) + ')')" "$@"; }
    echo "pinned median of $ROUNDS interleaved rounds, server / in-process: HTTP $(med "${ratios_http[@]}"); gRPC $(med "${ratios_grpc[@]}")" | tee -a "$OUT/summary.txt"
    if command -v h2load > /dev/null; then
      n=$(python3 -c "print(max(100, int($(json "$OUT/pinned-grpc-$variant.json" "d['achieved_qps']") * $DURATION)))")
      taskset -c 1 h2load -n "$n" -c 1 -t 1 -m "$CONC" -d "$OUT/body-grpc.bin" -H "content-type: application/grpc" -H "te: trailers" \
        "$G/inference.GRPCInferenceService/ModelInfer" > "$OUT/h2load-$variant-pinned.txt"
      hq=$(grep -oP 'finished in [0-9.]+m?s, \K[0-9.]+(?= req/s)' "$OUT/h2load-$variant-pinned.txt")
      l=$(json "$OUT/pinned-grpc-$variant.json" "d['achieved_qps']")
      echo "pinned h2load gRPC (1 connection, $CONC streams): $hq req/s = $(python3 -c "print(f'{$hq*$CAND/$pin_ip:.1%}')") of the last round's in-process; loadgen/h2load = $(python3 -c "print(f'{$l/$hq:.3f}')")" | tee -a "$OUT/summary.txt"
    fi
    stop_server
  fi
done
echo "== load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
