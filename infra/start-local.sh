# Sourced by bench.sh and soak.sh: starts the release natter-local on a free port with its log in $OUT, waits
# until it is ready, and stops it when the script exits. Sets URL (ws://...) and LOCAL (its pid).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="ws://127.0.0.1:$PORT"
echo "==> natter-local on $URL"
./target/release/natter-local --port "$PORT" --bin-dir target/release --concurrency 8 > "$OUT/natter-local.log" 2>&1 &
LOCAL=$!
trap 'kill -INT $LOCAL 2>/dev/null || true; wait $LOCAL 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "natter-local ready" "$OUT/natter-local.log" && break
  kill -0 $LOCAL 2>/dev/null || { cat "$OUT/natter-local.log"; exit 1; }
  sleep 0.5
done
