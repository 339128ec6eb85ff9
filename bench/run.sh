#!/usr/bin/env bash
# End-to-end benchmark: N Venafi certificates in error, retried at concurrency C against the
# sandbox with L ms of latency on the retry endpoint, by redrive (journal on) and by its peers
# (curl --parallel, Hurl --parallel when installed). One line of figures per tool.
#
# usage: bench/run.sh N C L [redrive|redrive_pg|curl|hurl ...]     e.g. bench/run.sh 10000 64 20
#
# redrive_pg is redrive with its state in PostgreSQL: BENCH_STATE=postgres://… names the
# database (each run uses a runbook name of its own, so no history is shared between runs).
# REDRIVE_BIN=path skips the build and runs that binary.
#
# Each tool gets a fresh sandbox (a separate `redrive sandbox` process), so every run sends the
# same N retries to certificates in error. The sandbox counts the requests it received: the
# figure must equal N (no request lost, none sent twice).
set -euo pipefail

N=${1:?usage: bench/run.sh N C L [tools...]}
C=${2:?usage: bench/run.sh N C L [tools...]}
L=${3:?usage: bench/run.sh N C L [tools...]}
shift 3
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(redrive curl hurl)

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${REDRIVE_BIN:-}" ]; then
  bin=$REDRIVE_BIN
else
  cargo build --release --locked -q --manifest-path "$root/Cargo.toml"
  # The binary cargo just built: $CARGO_TARGET_DIR when set, as cargo itself honours it.
  bin=${CARGO_TARGET_DIR:-$root/target}/release/redrive
fi
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/scenario.yaml" <<EOF
seed: 1
venafi_tpp:
  # Retried certificates stay in processing: every request of a run finds its certificate in error.
  processing: 1h
  token_ttl: 24h
  generate: [{count: $N, parent: '\\VED\\Policy\\Bench', name: 'c{n}'}]
  faults:
    latency: {fixed: ${L}ms, endpoints: ['POST /vedsdk/certificates/retry']}
EOF

start_sandbox() {
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

token() {
  curl -s -X POST "$base/vedauth/authorize/oauth" -H 'Content-Type: application/json' \
    -d '{"client_id":"redrive","username":"svc-redrive","password":"sandbox","scope":"certificate:manage"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# Runs a command under /usr/bin/time and prints the figures line.
measure() {
  local tool=$1
  shift
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/$tool.out" 2>"$work/$tool.err" || {
    echo "$tool failed; its output:" >&2
    tail -n 20 "$work/$tool.out" "$work/$tool.err" >&2
    return 1
  }
  python3 - "$tool" "$N" "$C" "$L" "$(received)" "$work/time.txt" <<'PY'
import math, re, sys
tool, n, c, l, got, timefile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
text = open(timefile).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.*)", text).group(1)
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
bound = math.ceil(n / c) * l / 1000
ratio = f"{secs / bound:.2f}x" if bound > 0 else "n/a"
print(f"{tool:8} N={n} C={c} L={l}ms  wall {secs:.2f} s  {n / secs:,.0f} actions/s  peak RSS {rss:.1f} MB  "
      f"bound {bound:.2f} s  ratio {ratio}  sandbox received {got}{'' if got == n else '  MISMATCH'}")
PY
}

run_redrive() {
  local name=${1:-bench}
  start_sandbox
  seq 1 "$N" | sed 's/^/\\VED\\Policy\\Bench\\c/' >"$work/dns.txt"
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
    limits: {concurrency: $C}
jobs:
  - id: retry
    provider: tpp
    action: retry_certificate
    for_each: "{{ inputs.dns }}"
    with: {certificate_dn: "{{ item }}"}
EOF
  rm -rf "$work/.redrive"
  # The certificates are known to be in error: no read-only pass, straight to sending. Progress
  # is on: stderr is a file here, so it comes as plain lines, as on CI (BENCHMARKS.md has the
  # same run with bars drawn on a terminal).
  TPP_PASSWORD=sandbox measure "${2:-redrive}" "$bin" apply --auto-approve --refresh=false \
    --parallelism "$C" "$work/bench.yaml"
  stop_sandbox
}

run_redrive_pg() {
  [ -n "${BENCH_STATE:-}" ] || { echo "redrive_pg needs BENCH_STATE=postgres://…" >&2; return 1; }
  REDRIVE_STATE=$BENCH_STATE run_redrive "bench-$(date +%s%N)" redrive_pg
}

run_curl() {
  start_sandbox
  local t
  t=$(token)
  python3 - "$N" "$base" "$t" >"$work/curl.cfg" <<'PY'
import json, sys
n, base, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def quoted(text):
    # curl config strings: backslash and double quote are escaped.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
out = []
for i in range(1, n + 1):
    body = json.dumps({"CertificateDN": "\\VED\\Policy\\Bench\\c%d" % i}, separators=(",", ":"))
    out.append(f'url = "{base}/vedsdk/Certificates/Retry"\nrequest = "POST"\n'
               f'header = "Authorization: Bearer {token}"\nheader = "Content-Type: application/json"\n'
               f'data = {quoted(body)}\noutput = "/dev/null"\nnext\n')
# No `next` after the last request: curl would look for another URL.
sys.stdout.write("".join(out)[: -len("next\n")])
PY
  measure curl curl --parallel --parallel-max "$C" --silent --config "$work/curl.cfg"
  stop_sandbox
}

run_hurl() {
  local hurl
  hurl=$(command -v hurl || true)
  [ -n "$hurl" ] || [ ! -x "$root/../tools-hurl/bin/hurl" ] || hurl=$root/../tools-hurl/bin/hurl
  if [ -z "$hurl" ]; then
    echo "hurl     skipped: not installed (cargo install hurl --locked, with libxml2-dev and libcurl4-openssl-dev)"
    return 0
  fi
  start_sandbox
  local t
  t=$(token)
  mkdir -p "$work/hurl"
  python3 - "$N" "$base" "$t" "$work/hurl" <<'PY'
import sys
n, base, token, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
for i in range(1, n + 1):
    with open(f"{out}/{i}.hurl", "w") as f:
        f.write(f'POST {base}/vedsdk/Certificates/Retry\nAuthorization: Bearer {token}\n'
                f'Content-Type: application/json\n{{"CertificateDN":"\\\\VED\\\\Policy\\\\Bench\\\\c{i}"}}\nHTTP 200\n')
PY
  measure hurl "$hurl" --parallel --jobs "$C" --test "$work"/hurl/*.hurl
  stop_sandbox
}

for tool in "${tools[@]}"; do
  "run_$tool"
done
