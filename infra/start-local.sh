# Sourced by bench.sh and soak.sh. `start_local EMULATOR` starts the release natter-local on a free port with the
# given emulator (ministack or moto) and its log in $OUT, waits until it is ready and sets URL (ws://...) and
# LOCAL (its pid); `stop_local` stops it (and runs when the script exits).
start_local() {
  local emulator=${1:-ministack}
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  URL="ws://127.0.0.1:$PORT"
  echo "==> natter-local on $URL with $emulator"
  ./target/release/natter-local --port "$PORT" --bin-dir target/release --concurrency 8 --emulator "$emulator" \
    > "$OUT/natter-local-$emulator.log" 2>&1 &
  LOCAL=$!
  trap stop_local EXIT
  for _ in $(seq 1 240); do
    grep -q "natter-local ready" "$OUT/natter-local-$emulator.log" && return 0
    kill -0 $LOCAL 2>/dev/null || { cat "$OUT/natter-local-$emulator.log"; exit 1; }
    sleep 0.5
  done
  echo "natter-local did not start"; exit 1
}

stop_local() {
  if [ -n "${LOCAL:-}" ]; then
    kill -INT "$LOCAL" 2>/dev/null || true
    wait "$LOCAL" 2>/dev/null || true
    LOCAL=
  fi
}
