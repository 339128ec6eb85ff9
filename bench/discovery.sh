#!/usr/bin/env bash
# Discovery and bulk observation: how many read requests `plan` needs when the targets are
# discovered and observed from list endpoints, against the per-target path (`--no-bulk-reads`),
# on the same generated sandbox world; and whether both decide the same for every action.
#
# usage: bench/discovery.sh [N_VENAFI] [N_DIGICERT]     e.g. bench/discovery.sh 10000 500
#
# Venafi: N certificates in error under one folder, found by a `tpp_certificates` source (no input
# file). Today's per-target path needs 2 reads a target (Config/DnToGuid + Certificates/{guid}).
# DigiCert: N automations in a failed status, found by an `automated_ips` source and observed.
# Each plan gets a fresh sandbox (a separate `redrive sandbox` process); the figures are the
# sandbox's own request counts. One line of figures per provider and path.
set -euo pipefail

NV=${1:-10000}
ND=${2:-500}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked -q --manifest-path "$root/Cargo.toml"
bin=$target/release/redrive
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/scenario.yaml" <<EOF
seed: 7
venafi_tpp:
  generate: [{count: $NV, parent: '\\VED\\Policy\\Outage', name: 'c{n}', stage: 500, status: 'Post processing failed'}]
digicert:
  generate: [{count: $ND, first_ip: 10.30.0.1, port: 443, statuses: [AUTOMATION_FAILED, INSTALL_FAILED]}]
EOF

start_sandbox() {
  "$bin" sandbox --port 0 --format json --scenario "$work/scenario.yaml" >"$work/urls.json" 2>/dev/null &
  sandbox_pid=$!
  for _ in $(seq 1 200); do
    [ -s "$work/urls.json" ] && break
    sleep 0.05
  done
  [ -s "$work/urls.json" ] || { echo "the sandbox did not start" >&2; exit 1; }
  tpp=$(url venafi_tpp)
  dc=$(url digicert)
}

url() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["providers"][sys.argv[2]])' "$work/urls.json" "$1"
}

stop_sandbox() {
  kill "$sandbox_pid" 2>/dev/null || true
  wait "$sandbox_pid" 2>/dev/null || true
  sandbox_pid=
}

# The requests a provider received, by endpoint, as JSON.
received() {
  curl -s "$1/_sandbox/stats?targets=false" |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["providers"][sys.argv[1]]["by_endpoint"]))' "$2"
}

runbook() {
  cat >"$work/discover.yaml" <<EOF
version: 1
name: discover
providers:
  tpp:
    type: venafi_tpp
    url: $tpp
    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}
    limits: {concurrency: 64}
  dc:
    type: digicert
    url: $dc
    auth: {api_key: {env: DIGICERT_API_KEY}}
sources:
  in_error: {provider: tpp, type: tpp_certificates, with: {folder: '\\VED\\Policy\\Outage', in_error: true}}
  failed: {provider: dc, type: automated_ips, with: {account_id: 5153184, automation_status: [AUTOMATION_FAILED, INSTALL_FAILED]}}
jobs:
  - {id: retry, provider: tpp, action: retry_certificate, for_each: "{{ sources.in_error }}", with: {certificate_dn: "{{ item.dn }}"}}
  - id: automations
    provider: dc
    action: bulk_retry_automation
    for_each: "{{ sources.failed }}"
    with: {account_id: 5153184, division_id: 677793, targets: ["{{ item.target }}"]}
EOF
}

plan() {
  local name=$1
  shift
  start_sandbox
  runbook
  rm -rf "$work/.redrive"
  local start end code
  start=$(date +%s.%N)
  set +e
  TPP_PASSWORD=sandbox DIGICERT_API_KEY=sandbox-digicert-api-key "$bin" plan --format json "$@" "$work/discover.yaml" \
    >"$work/$name.json" 2>"$work/$name.err"
  code=$?
  set -e
  end=$(date +%s.%N)
  [ "$code" = 2 ] || { echo "plan exited $code" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
  received "$tpp" venafi_tpp >"$work/$name.tpp"
  received "$tpp" digicert >"$work/$name.dc"
  stop_sandbox
  echo "$end - $start" | bc >"$work/$name.secs"
}

plan bulk
plan single --no-bulk-reads

python3 - "$work" "$NV" "$ND" <<'PY'
import json, sys
work, nv, nd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    plan = json.load(open(f"{work}/{name}.json"))
    decisions = {}
    for job in plan["jobs"]:
        for a in job["actions"]:
            decisions[(job["id"], a["target"])] = a["decision"]["decision"]
    tpp = json.load(open(f"{work}/{name}.tpp"))
    dc = json.load(open(f"{work}/{name}.dc"))
    secs = float(open(f"{work}/{name}.secs").read())
    return decisions, tpp, dc, secs
def reads(counts, prefixes):
    return sum(v for k, v in counts.items() if any(k.lower().startswith(p) for p in prefixes))
# Every read the plan sent: the search and per-target checks (auth calls are not reads).
tpp_reads = ["get /vedsdk/certificates", "post /vedsdk/config/dntoguid"]
dc_reads = ["post /automationws/v1/automatedips/list", "post /automationws/v1/automation/viewautomationdetails"]
bulk, single = load("bulk"), load("single")
for name, (decisions, tpp, dc, secs) in (("bulk", bulk), ("per-target", single)):
    runs = {j: sum(1 for (job, _), d in decisions.items() if job == j and d == "run") for j in ("retry", "automations")}
    v, d = reads(tpp, tpp_reads), reads(dc, dc_reads)
    print(f"{name:10}  plan {secs:.2f} s  venafi: {runs['retry']} of {nv} to run, {v} reads "
          f"({100 * v / (2 * nv):.2f} % of the {2 * nv} per-target reads)  "
          f"digicert: {runs['automations']} of {nd} to run, {d} requests")
    print(f"{'':10}  venafi {json.dumps(tpp)}  digicert {json.dumps(dc)}")
same = bulk[0] == single[0]
print(f"decisions equal: {same} ({len(bulk[0])} actions)")
if not same:
    diff = [(k, bulk[0].get(k), single[0].get(k)) for k in set(bulk[0]) | set(single[0]) if bulk[0].get(k) != single[0].get(k)]
    print("differences:", diff[:10])
    sys.exit(1)
PY
