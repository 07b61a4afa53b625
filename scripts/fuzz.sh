#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) and exits non-zero
# if any of them finds a crash.
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz from crates.io when it is missing. libFuzzer's instrumentation
# needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# Each target starts from the committed seeds in fuzz/seeds/<target> plus whatever corpus
# earlier runs left in fuzz/corpus/<target> (not committed). A crash leaves its input in
# fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# and turn it into an ordinary regression test before fixing it.
set -euo pipefail

SECONDS_PER_TARGET=${1:-60}
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
  echo "usage: $0 [SECONDS]  (whole seconds per target, default 60)" >&2
  exit 64
fi

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# Start from the versions the main build uses, so the fuzzed code is the shipped code.
if [[ ! -f fuzz/Cargo.lock ]]; then
  cp Cargo.lock fuzz/Cargo.lock
fi

mapfile -t TARGETS < <(cargo fuzz list)
echo "fuzz targets: ${TARGETS[*]} (${SECONDS_PER_TARGET}s each)"
cargo fuzz build --release

failed=()
for target in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [[ -d "fuzz/seeds/$target" ]]; then
    cp -n "fuzz/seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "==> $target"
  log="fuzz/target/$target.log"
  # -timeout: one input taking over 10 s counts as a hang; -rss_limit_mb bounds memory.
  if cargo fuzz run --release "$target" "$corpus" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 \
      -print_final_stats=1 2>"$log"; then
    runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "    ok: $runs inputs, no crash"
  else
    echo "    CRASH in $target; last lines of its log:"
    tail -n 30 "$log"
    failed+=("$target")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "fuzzing done: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, no crash"
