#!/usr/bin/env bash
# Fuzzes frame parsing and cursor decoding (fuzz/, cargo-fuzz) for SECONDS per target: `make fuzz` runs long,
# `make test` a short smoke run. A crash or a hang (over 5 s on one input) fails the run; libFuzzer leaves the
# input in fuzz/artifacts/<target>/ for `cargo fuzz run <target> <file>`.
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them, and `-s none` skips
# AddressSanitizer (the targets are safe Rust; libFuzzer's coverage guidance stays on).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-600}
CARGO_FUZZ_VERSION=0.13.2
TOOLS="$PWD/.tools"
export PATH="$TOOLS/bin:$PATH" RUSTC_BOOTSTRAP=1
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools"
  cargo install --quiet --locked --root "$TOOLS" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
cd fuzz
cargo fuzz build -s none
for target in ${FUZZ_TARGETS:-frames cursors}; do
  # The committed seeds stay as they are; what libFuzzer learns goes to a scratch corpus.
  work=$(mktemp -d)
  echo "==> fuzzing $target for ${SECONDS_PER_TARGET}s"
  log="$work.log"
  set +e
  cargo fuzz run -s none "$target" "$work" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=5 -max_len=40000 -print_final_stats=1 > "$log" 2>&1
  status=$?
  set -e
  grep -E "^(Done|stat::number_of_executed_units)|ERROR|panicked|Test unit written|error" "$log" || tail -20 "$log"
  rm -f "$log"
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target failed (status $status); see fuzz/artifacts/$target/"
    exit 1
  fi
done
