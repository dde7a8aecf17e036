#!/usr/bin/env bash
# `make bench`: a standard load against natter-local (release builds, on MiniStack; the one-on-one and group-of-10
# loads again on moto, for the side-by-side table), cold starts and binary sizes, rendered into docs/performance.md.
# Runs in a few minutes once the release build exists.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench-out
rm -rf "$OUT" && mkdir -p "$OUT/moto"
CARGO=${CARGO:-cargo}

echo "==> release build"
$CARGO build --release --workspace --bins --quiet

echo "==> Node.js baseline handler"
(cd bench/node && npm ci --silent --no-audit --no-fund)

# shellcheck source=infra/start-local.sh
source infra/start-local.sh

COMMANDS=()
load() {
  local file=$1
  shift
  echo "==> natter-loadgen $*"
  COMMANDS+=("natter-loadgen --url ws://127.0.0.1:PORT $*")
  ./target/release/natter-loadgen --url "$URL" "$@" --out "$OUT/$file" > /dev/null
}
PAIRS=(--scenario pairs --clients 20 --rate 10 --duration 40 --label "one-on-one, 20 users")
GROUP10=(--scenario group --group-size 10 --online 5 --rate 10 --duration 30 --label "group of 10, 5 online")
start_local ministack
load 1-pairs.json "${PAIRS[@]}"
load 2-group10.json "${GROUP10[@]}"
load 3-group1000.json --scenario group --group-size 1000 --online 500 --rate 1 --duration 20 --label "group of 1,000, 500 online"
load 4-offline.json --scenario offline --clients 20 --rate 20 --duration 20 --label "offline, then sync (20 users)"
stop_local
COMMANDS+=("natter-local --emulator moto, then:")
start_local moto
load moto/1-pairs.json "${PAIRS[@]}"
load moto/2-group10.json "${GROUP10[@]}"
stop_local
trap - EXIT

echo "==> cold starts"
COMMANDS+=("natter-local coldstart --runs 20 --bin-dir target/release --extra NodeSdk=bench/node/bootstrap")
# About 15 s. Bounded all the same: until its functions got a local stand-in for AWS during init, it could run for
# an hour, and the load tables above are worth keeping without it (bench/init_time.py measures init on its own).
if ! timeout 300 ./target/release/natter-local coldstart --runs 20 --bin-dir target/release \
  --extra NodeSdk=bench/node/bootstrap --out "$OUT/coldstart.json" > /dev/null; then
  echo "cold starts skipped: natter-local coldstart did not finish in 300 s (use bench/init_time.py)"
  rm -f "$OUT/coldstart.json"
fi

echo "==> sizes"
python3 - "$OUT/sizes.json" <<'PY'
import glob, io, json, os, sys, zipfile
sizes = {}
for path in sorted(glob.glob("target/release/natter-*")):
    name = os.path.basename(path)
    if not os.access(path, os.X_OK) or name.endswith(".d") or name in ("natter-local", "natter-loadgen", "natter-faulty"):
        continue
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    logical = "".join(p.capitalize() for p in name.removeprefix("natter-").split("-")) + "Function"
    sizes[logical] = {"binary": os.path.getsize(path), "zip": len(buf.getvalue())}
json.dump(sizes, open(sys.argv[1], "w"), indent=2)
PY

python3 - "$OUT/meta.json" "${COMMANDS[@]}" <<'PY'
import datetime, json, os, platform, sys
meta = {
    "date": datetime.date.today().isoformat(),
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
    "commands": sys.argv[2:],
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY

./target/release/natter-loadgen report --dir "$OUT" --doc docs/performance.md
echo "==> docs/performance.md updated"
