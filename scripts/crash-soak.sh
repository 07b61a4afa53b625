#!/usr/bin/env bash
# The long crash run: SIGKILLs the proxy KILLS times (default 200) at random moments
# while SENDERS (default 8) senders deliver signed events, each retrying until it gets a
# 2xx or an already_processed answer; then checks that every event reached the app and
# that none was forwarded after the sender saw it acknowledged, and prints the counts.
#
#   scripts/crash-soak.sh [KILLS] [SENDERS]
#
# It is `failure::crash_safety_under_random_sigkill` (20 kills in CI) run longer. Set
# HOOKWARDEN_CRASH_SEED to replay the kill moments of an earlier run (the run prints its
# seed). Traffic stays on 127.0.0.1; the run ends by itself.
set -euo pipefail

KILLS=${1:-200}
SENDERS=${2:-8}
for value in "$KILLS" "$SENDERS"; do
  if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [KILLS] [SENDERS]  (positive whole numbers)" >&2
    exit 64
  fi
done

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

export HOOKWARDEN_CRASH_KILLS=$KILLS
export HOOKWARDEN_CRASH_SENDERS=$SENDERS
echo "crash soak: $KILLS kills, $SENDERS senders"
cargo test --release --test failure -- --exact crash_safety_under_random_sigkill --nocapture
