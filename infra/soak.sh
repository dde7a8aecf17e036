#!/usr/bin/env bash
# `make soak`: the churn scenario (pairs chatting while clients drop and come back at random, then sync) against
# natter-local (on MiniStack; SOAK_EMULATOR=moto for moto) for SOAK_SECONDS, default 30 minutes, at 20 clients,
# 10 msg/s, 0.5 reconnects/s (SOAK_CLIENTS, SOAK_RATE, SOAK_CHURN change it; moto sustains about half that;
# docs/reliability.md has the last run). Fails unless loss, duplicates and order violations are 0 and every send
# was acked in the end. `make test` runs a 20-second version (tests/tests/e2e/soak.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-1800}
CARGO=${CARGO:-cargo}
OUT=soak-out
mkdir -p "$OUT"
$CARGO build --release --workspace --bins --quiet
# shellcheck source=infra/start-local.sh
source infra/start-local.sh
start_local "${SOAK_EMULATOR:-ministack}"
./target/release/natter-loadgen --url "$URL" --scenario churn --clients "${SOAK_CLIENTS:-20}" \
  --rate "${SOAK_RATE:-10}" --churn-per-sec "${SOAK_CHURN:-0.5}" --duration "$SECONDS_TOTAL" \
  --label "soak: churn for ${SECONDS_TOTAL}s" --out "$OUT/soak.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("soak:", r["sent"], "sent,", r["acked"], "acked,", r["reconnects"], "reconnects,", r["guarantees"])' "$OUT/soak.json"
