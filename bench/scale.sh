#!/usr/bin/env bash
# Plans and applies at scale (issue 16, "Plans at a million actions"): one `for_each` of Venafi
# `retry_certificate` actions over an input file of N DNs. Prints, per case, every run's wall
# time and peak RSS (from /usr/bin/time -v) and their medians:
#
#   plan-json   `plan --refresh=false --format json` of PLAN_N actions (stdout to a file)
#   plan-text   the same plan as the text diff
#   saved       `plan --refresh=false --out FILE` of PLAN_N actions: time, RSS, bytes per action
#   apply-big   `apply --auto-approve --refresh=false` of APPLY_N actions at C=256 against the
#               sandbox with 5 ms latency: RSS, every action final, the sandbox's count = N
#   apply-fast  the same with FAST_N actions: seconds and the ratio to the bound ceil(N/C)·L
#
# usage: bench/scale.sh [cases...]   (default: all five; RUNS=3 PLAN_N=1000000 APPLY_N=1000000
#                                     FAST_N=100000 C=256 L=5 to change)
#
# WRAP="heaptrack -o FILE" runs the apply cases under a profiler.
#
# The release binary comes from $CARGO_TARGET_DIR (or target/). The sandbox runs as its own
# process and shares the machine with redrive: its CPU is part of what limits the apply cases.
set -euo pipefail

RUNS=${RUNS:-3}
PLAN_N=${PLAN_N:-1000000}
APPLY_N=${APPLY_N:-1000000}
FAST_N=${FAST_N:-100000}
C=${C:-256}
L=${L:-5}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(plan-json plan-text saved apply-big apply-fast)

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
# BIN=path runs a given binary (e.g. a baseline build) instead of building this tree.
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q --manifest-path "$root/Cargo.toml"
fi
bin=${BIN:-$target/release/redrive}
# SANDBOX_BIN=path serves every case from one binary's sandbox, so two builds' clients are
# compared against the same server.
sandbox_bin=${SANDBOX_BIN:-$bin}
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A runbook of one job over N DNs, pointed at URL.
runbook() {
  local n=$1 url=$2
  local dir=$work/rb-$n
  mkdir -p "$dir"
  [ -s "$dir/dns.txt" ] || seq 1 "$n" | sed 's/^/\\VED\\Policy\\Bench\\c/' >"$dir/dns.txt"
  cat >"$dir/bench.yaml" <<EOF
version: 1
name: bench
inputs:
  dns: {file: dns.txt}
providers:
  tpp:
    type: venafi_tpp
    url: $url
    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}
    limits: {concurrency: $C}
jobs:
  - id: retry
    provider: tpp
    action: retry_certificate
    for_each: "{{ inputs.dns }}"
    with: {certificate_dn: "{{ item }}"}
EOF
  rm -rf "$dir/.redrive"
  echo "$dir/bench.yaml"
}

start_sandbox() {
  local n=$1
  cat >"$work/scenario.yaml" <<EOF
seed: 1
venafi_tpp:
  processing: 1h
  token_ttl: 24h
  generate: [{count: $n, parent: '\\VED\\Policy\\Bench', name: 'c{n}'}]
  faults:
    latency: {fixed: ${L}ms, endpoints: ['POST /vedsdk/certificates/retry']}
EOF
  : >"$work/urls.json"
  "$sandbox_bin" sandbox --port 0 --format json --scenario "$work/scenario.yaml" >"$work/urls.json" 2>/dev/null &
  sandbox_pid=$!
  for _ in $(seq 1 600); do
    [ -s "$work/urls.json" ] && break
    sleep 0.1
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

# Runs a command under /usr/bin/time; appends "seconds rss_mb" to $work/figures. Exit codes 0
# and 2 (plan: changes pending) count as success.
timed() {
  local code=0
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out" 2>"$work/err" || code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
    echo "failed with exit $code: $*" >&2
    tail -n 20 "$work/err" >&2
    exit 1
  fi
  python3 - "$work/time.txt" >>"$work/figures" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.*)", text).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
cpu = float(re.search(r"User time \(seconds\): (.*)", text).group(1)) + float(re.search(r"System time \(seconds\): (.*)", text).group(1))
print(f"{secs:.2f} {rss:.1f} {cpu:.2f}")
PY
}

# Prints the runs and medians of $work/figures under a label, plus an extra note.
report() {
  local label=$1 note=${2:-}
  python3 - "$label" "$note" "$work/figures" <<'PY'
import statistics, sys
label, note, path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [tuple(map(float, line.split())) for line in open(path) if line.strip()]
secs, rss, cpu = (sorted(c) for c in zip(*rows))
runs = ", ".join(f"{s:.2f} s/{r:.0f} MB" for s, r, _ in rows)
print(f"{label:11} median {statistics.median(secs):.2f} s  peak RSS {statistics.median(rss):.1f} MB  "
      f"CPU {statistics.median(cpu):.2f} s  [{runs}]{('  ' + note) if note else ''}")
PY
  : >"$work/figures"
}

plan_case() {
  local format=$1 rb
  rb=$(runbook "$PLAN_N" https://tpp.example.com)
  for _ in $(seq 1 "$RUNS"); do
    TPP_PASSWORD=x timed "$bin" plan --refresh=false --format "$format" "$rb"
  done
  local actions
  actions=$(grep -c '^  + ' "$work/out" || true)
  [ "$format" = json ] && actions=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(sum(len(j["actions"]) for j in p["jobs"]))' "$work/out")
  report "plan-$format" "N=$PLAN_N, $actions actions in the output"
}

saved_case() {
  local rb
  rb=$(runbook "$PLAN_N" https://tpp.example.com)
  for _ in $(seq 1 "$RUNS"); do
    TPP_PASSWORD=x timed "$bin" plan --refresh=false --out "$work/plan.json" "$rb"
  done
  local size
  size=$(stat -c %s "$work/plan.json")
  report saved "N=$PLAN_N, $size bytes, $((size / PLAN_N)) bytes per action"
}

apply_case() {
  local label=$1 n=$2 rb got
  local notes=()
  for _ in $(seq 1 "$RUNS"); do
    start_sandbox "$n"
    rb=$(runbook "$n" "$base")
    TPP_PASSWORD=sandbox timed ${WRAP:-} "$bin" apply --auto-approve --refresh=false --parallelism "$C" "$rb"
    got=$(received)
    local final
    final=$(grep -Eo 'Apply: .*' "$work/out" | tail -n 1 || true)
    notes+=("sandbox received $got$([ "$got" = "$n" ] || echo ' MISMATCH'); $final")
    stop_sandbox
  done
  local bound
  bound=$(python3 -c "import math; print(f'{math.ceil($n / $C) * $L / 1000:.2f}')")
  local median
  median=$(python3 -c 'import statistics,sys; print(statistics.median(float(l.split()[0]) for l in open(sys.argv[1])))' "$work/figures")
  report "$label" "N=$n C=$C L=${L}ms bound $bound s, ratio $(python3 -c "print(f'{$median / $bound:.2f}x')"); ${notes[*]}"
}

: >"$work/figures"
for case in "${cases[@]}"; do
  case $case in
    plan-json) plan_case json ;;
    plan-text) plan_case text ;;
    saved) saved_case ;;
    apply-big) apply_case apply-big "$APPLY_N" ;;
    apply-fast) apply_case apply-fast "$FAST_N" ;;
    *) echo "unknown case $case" >&2; exit 3 ;;
  esac
done
