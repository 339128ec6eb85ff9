#!/usr/bin/env bash
# Diagnostics scale linearly: time `redrive validate` (release build) on a generated runbook
# with N problems, printed as text and as JSON. One line of figures per format.
#
# usage: bench/validate-scale.sh N [jobs|keys]     e.g. bench/validate-scale.sh 200000 keys
#
# `jobs`: N jobs with one unknown key each (about 45 bytes a job, so N <= ~90,000 fits the
#         4 MiB runbook limit; past it validate reports `file-too-large` instead).
# `keys`: one runbook with N unknown top-level keys (8 bytes each): 200,000 problems fit.
# The script checks the problem count, so a run that stopped early does not look fast.
set -euo pipefail

N=${1:?usage: bench/validate-scale.sh N [jobs|keys]}
shape=${2:-keys}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked -q --manifest-path "$root/Cargo.toml"
bin=$target/release/redrive
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file=$work/many.yaml

{
  printf 'version: 1\nname: many\nproviders:\n  p: {type: http, url: "https://api.example.com"}\n'
  if [ "$shape" = jobs ]; then
    printf 'jobs:\n'
    awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "  - {id: j%d, provider: p, action: http, with: {url: /x}, bogus: 1}\n", i }'
  else
    printf 'jobs:\n  - {id: j, provider: p, action: http, with: {url: /x}}\n'
    awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "k%d: 1\n", i }'
  fi
} >"$file"

for format in text json; do
  start=$(date +%s.%N)
  set +e
  "$bin" validate --format "$format" "$file" >"$work/out" 2>"$work/err"
  code=$?
  set -e
  end=$(date +%s.%N)
  if [ "$format" = text ]; then
    found=$(grep -c '^error\[unknown-key\]' "$work/err" || true)
  else
    found=$(grep -c '"code": "unknown-key"' "$work/out" || true)
  fi
  [ "$code" = 3 ] || { echo "unexpected exit $code" >&2; head -20 "$work/err" >&2; exit 1; }
  [ "$found" = "$N" ] || { echo "expected $N problems, found $found" >&2; exit 1; }
  printf '%-5s %-4s N=%d problems=%d bytes=%d seconds=%.2f\n' \
    "$format" "$shape" "$N" "$found" "$(wc -c <"$file")" "$(echo "$end - $start" | bc)"
done
