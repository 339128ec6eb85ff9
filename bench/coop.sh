#!/usr/bin/env bash
# The cooperative apply (issue 18, step 2): R runners at C each share one saved plan of N Venafi
# retries (an unlimited provider) against one sandbox with L ms of latency on the retry endpoint,
# their state in PostgreSQL. Prints one line per figure: the whole wall time (processes started
# to all ended) and the send phase (first `sent` to last final record, by the database's clock),
# each against the bound for one runner at R×C: ceil(N / (R×C)) × L.
#
# usage: BENCH_STATE=postgres://… bench/coop.sh N C L [R]      e.g. bench/coop.sh 20000 64 20 4
#
# Also runs one runner at R×C against a fresh sandbox for comparison. REDRIVE_BIN=path skips the
# build. Each run uses a runbook name of its own, so no history is shared between runs.
set -euo pipefail

N=${1:?usage: bench/coop.sh N C L [R]}
C=${2:?usage: bench/coop.sh N C L [R]}
L=${3:?usage: bench/coop.sh N C L [R]}
R=${4:-4}
[ -n "${BENCH_STATE:-}" ] || { echo "bench/coop.sh needs BENCH_STATE=postgres://…" >&2; exit 1; }
command -v psql >/dev/null || { echo "bench/coop.sh needs psql" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${REDRIVE_BIN:-}" ]; then
  bin=$REDRIVE_BIN
else
  cargo build --release --locked -q --manifest-path "$root/Cargo.toml"
  bin=${CARGO_TARGET_DIR:-$root/target}/release/redrive
fi
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$work"; [ -z "${KEEP:-}" ] || echo "kept $work" >&2
}
trap cleanup EXIT

cat >"$work/scenario.yaml" <<EOF
seed: 1
venafi_tpp:
  processing: 1h
  token_ttl: 24h
  generate: [{count: $N, parent: '\\VED\\Policy\\Bench', name: 'c{n}'}]
  faults:
    latency: {fixed: ${L}ms, endpoints: ['POST /vedsdk/certificates/retry']}
EOF
seq 1 "$N" | sed 's/^/\\VED\\Policy\\Bench\\c/' >"$work/dns.txt"

start_sandbox() {
  : >"$work/urls.json"
  "$bin" sandbox --port 0 --format json --scenario "$work/scenario.yaml" >"$work/urls.json" 2>/dev/null &
  sandbox_pid=$!
  for _ in $(seq 1 200); do
    [ -s "$work/urls.json" ] && break
    sleep 0.05
  done
  [ -s "$work/urls.json" ] || { echo "the sandbox did not start" >&2; exit 1; }
  base=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["providers"]["venafi_tpp"])' "$work/urls.json")
}

stop_sandbox() {
  kill "$sandbox_pid" 2>/dev/null || true
  wait "$sandbox_pid" 2>/dev/null || true
  sandbox_pid=
}

received() {
  curl -s "$base/_sandbox/stats?targets=false" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["providers"]["venafi_tpp"]["by_endpoint"].get("POST /vedsdk/certificates/retry", 0))'
}

# One measured run: `runners` processes at `per` each. Prints the figures line.
run() {
  local runners=$1 per=$2 name
  name="coop-bench-$(date +%s%N)"
  start_sandbox
  cat >"$work/bench.yaml" <<EOF
version: 1
name: $name
inputs:
  dns: {file: dns.txt}
providers:
  tpp:
    type: venafi_tpp
    url: $base
    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}
    limits: {concurrency: $per}
jobs:
  - id: retry
    provider: tpp
    action: retry_certificate
    for_each: "{{ inputs.dns }}"
    with: {certificate_dn: "{{ item }}"}
EOF
  export TPP_PASSWORD=sandbox REDRIVE_STATE=$BENCH_STATE
  "$bin" plan --refresh=false --out "$work/plan.json" "$work/bench.yaml" >/dev/null 2>&1 || [ $? -eq 2 ]
  local t0 t1 pids=() i
  t0=$(date +%s.%N)
  for i in $(seq 1 "$runners"); do
    "$bin" apply --auto-approve --refresh=false --quiet --parallelism "$per" "$work/plan.json" \
      >"$work/r$i.out" 2>"$work/r$i.err" &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  t1=$(date +%s.%N)
  [ "$failed" -eq 0 ] || { echo "$failed runner(s) failed:" >&2; tail -n 5 "$work"/r*.err >&2; return 1; }
  local phase runners_sent
  phase=$(psql -Atq "$BENCH_STATE" -c "SELECT extract(epoch FROM max(written_at) - min(written_at)) FROM redrive.journal WHERE state_key = '$name'")
  runners_sent=$(psql -Atq "$BENCH_STATE" -c "SELECT count(DISTINCT runner) FROM redrive.journal WHERE state_key = '$name' AND state = 'sent'")
  python3 - "$runners" "$per" "$N" "$L" "$t0" "$t1" "$phase" "$(received)" "$runners_sent" <<'PY'
import math, sys
r, c, n, l = (int(x) for x in sys.argv[1:5])
t0, t1, phase = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7] or 0)
got, senders = int(sys.argv[8]), int(sys.argv[9])
bound = math.ceil(n / (r * c)) * l / 1000
wall = t1 - t0
print(f"redrive coop R={r} C={c} (R×C={r*c}) N={n} L={l}ms  wall {wall:.2f} s ({wall / bound:.2f}x)  "
      f"send phase {phase:.2f} s ({phase / bound:.2f}x)  bound {bound:.2f} s  "
      f"runners that sent {senders}  sandbox received {got}{'' if got == n else '  MISMATCH'}")
PY
  stop_sandbox
}

[ -n "${ONLY_ONE:-}" ] || run "$R" "$C"
run 1 "$((R * C))"
