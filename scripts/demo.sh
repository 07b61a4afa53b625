#!/usr/bin/env bash
# hookwarden demo: builds the proxy and the sample app, starts both, and delivers AJ
# webhooks through the proxy to show what it lets through and what it refuses.
#
#   bash scripts/demo.sh
#
# The proxy listens on 127.0.0.1:8080 (admin endpoints on the config's admin_listen) and
# forwards to the sample app on 127.0.0.1:3000.
# It runs with config/hookwarden.toml, except that its replay store lives in a fresh
# temporary folder, so every run starts with nothing seen. Both processes are stopped
# when the script exits. Needs bash, curl and coreutils.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

PROXY_ADDR=127.0.0.1:8080
APP_ADDR=127.0.0.1:3000
WEBHOOK_URL="http://$PROXY_ADDR/webhooks/aj"
BASE_CONFIG=config/hookwarden.toml
TARGET_DIR=${CARGO_TARGET_DIR:-target}
HOOKWARDEN=$TARGET_DIR/release/hookwarden
SAMPLE_APP=$TARGET_DIR/release/examples/sample_app
READY_TIMEOUT_SECONDS=60

# The test secret from the AJ scheme doc; the config reads it from this variable.
export AJ_WEBHOOK_SHARED_SECRET=test-secret-0123456789abcdef0123456789

die() {
  echo "demo: $*" >&2
  exit 1
}

# True when something accepts TCP connections on HOST:PORT.
port_open() {
  local host=${1%:*} port=${1##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# ---------------------------------------------------------------------------------------
# Checks and build
# ---------------------------------------------------------------------------------------
command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"
command -v cmake >/dev/null 2>&1 || die "cmake is needed to build pingora (apt-get install cmake)"
[[ -f $BASE_CONFIG ]] || die "$BASE_CONFIG not found"
# The admin listener (metrics, probes), when the config has one, needs its port free too.
ADMIN_ADDR=""
while IFS= read -r line || [[ -n $line ]]; do
  if [[ $line =~ ^[[:space:]]*admin_listen[[:space:]]*=[[:space:]]*\"([^\"]+)\" ]]; then
    ADMIN_ADDR=${BASH_REMATCH[1]}
  fi
done <"$BASE_CONFIG"
for addr in "$PROXY_ADDR" "$APP_ADDR" ${ADMIN_ADDR:+"$ADMIN_ADDR"}; do
  if port_open "$addr"; then
    die "port ${addr##*:} is busy: something already listens on $addr; stop it and run the demo again"
  fi
done

echo "== building hookwarden and the sample app (release) =="
cargo build --release --bin hookwarden --example sample_app

# ---------------------------------------------------------------------------------------
# A private config: the shipped one with the store path pointed at a temp folder
# ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hookwarden-demo.XXXXXX")
CONFIG="$WORK/hookwarden.toml"
APP_OUT="$WORK/app.out"
APP_ERR="$WORK/app.err"
PROXY_LOG="$WORK/proxy.log"
APP_PID=""
PROXY_PID=""
PROXY_LOG_SHOWN=""

# Stops a process: SIGTERM, then SIGKILL if it is still there after 5 s.
stop() {
  local pid=$1 _
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  stop "$PROXY_PID"
  stop "$APP_PID"
  if ((status != 0)) && [[ -z $PROXY_LOG_SHOWN && -s $PROXY_LOG ]]; then
    echo "--- last lines of the proxy log ---" >&2
    tail -n 20 "$PROXY_LOG" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

# Rewrites `path = ...` in the [store] table only (routes have a `path` too).
section=""
while IFS= read -r line || [[ -n $line ]]; do
  if [[ $line =~ ^[[:space:]]*\[+([^]]*)\]+ ]]; then
    section=${BASH_REMATCH[1]}
  fi
  if [[ $section == store && $line =~ ^[[:space:]]*path[[:space:]]*= ]]; then
    line="path = \"$WORK/store\""
  fi
  printf '%s\n' "$line"
done <"$BASE_CONFIG" >"$CONFIG"
[[ $(<"$CONFIG") == *"path = \"$WORK/store\""* ]] ||
  die "could not point the store at $WORK/store in $CONFIG"

# ---------------------------------------------------------------------------------------
# Start the app and the proxy, wait until both accept connections
# ---------------------------------------------------------------------------------------
echo "== starting the sample app on $APP_ADDR and hookwarden on $PROXY_ADDR =="
"$SAMPLE_APP" --listen "$APP_ADDR" >"$APP_OUT" 2>"$APP_ERR" &
APP_PID=$!
"$HOOKWARDEN" run --config "$CONFIG" >"$PROXY_LOG" 2>&1 &
PROXY_PID=$!

wait_ready() {
  local name=$1 addr=$2 pid=$3 log=$4 _
  for _ in $(seq $((READY_TIMEOUT_SECONDS * 10))); do
    port_open "$addr" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name exited before listening on $addr; its output:" >&2
      tail -n 20 "$log" >&2
      [[ $log != "$PROXY_LOG" ]] || PROXY_LOG_SHOWN=1
      exit 1
    fi
    sleep 0.1
  done
  die "$name did not listen on $addr within ${READY_TIMEOUT_SECONDS}s"
}
wait_ready "the sample app" "$APP_ADDR" "$APP_PID" "$APP_ERR"
wait_ready "hookwarden" "$PROXY_ADDR" "$PROXY_PID" "$PROXY_LOG"
echo "both are up (store: $WORK/store)"

# ---------------------------------------------------------------------------------------
# Deliveries
# ---------------------------------------------------------------------------------------
APP_LINES_SEEN=0
STEP=0

# Prints a step title.
title() {
  STEP=$((STEP + 1))
  printf '\n== %d. %s ==\n' "$STEP" "$*"
}

# Writes a body to a file in the work folder (exact bytes, no newline) and prints its path.
body_file() {
  local name=$1 body=$2
  printf '%s' "$body" >"$WORK/$name.json"
  printf '%s\n' "$WORK/$name.json"
}

# Prints the sender's view (lines on stdin) indented.
show_sender() {
  local line
  echo "sender got:"
  while IFS= read -r line || [[ -n $line ]]; do
    printf '    %s\n' "$line"
  done
}

# Prints the app's stdout lines written since the last call.
show_app() {
  local total line
  sleep 0.3 # let the app finish writing its line
  total=$(wc -l <"$APP_OUT")
  echo "app received:"
  if ((total > APP_LINES_SEEN)); then
    tail -n "+$((APP_LINES_SEEN + 1))" "$APP_OUT" | head -n "$((total - APP_LINES_SEEN))" |
      while IFS= read -r line; do printf '    %s\n' "$line"; done
  else
    echo "    (nothing: the request never reached the app)"
  fi
  APP_LINES_SEEN=$total
}

# Signs BODY_FILE with the route's secret and POSTs it through the proxy; extra args go to `sign`.
deliver() {
  local file=$1
  shift
  "$HOOKWARDEN" sign --config "$CONFIG" --route aj --body "$file" --send "$WEBHOOK_URL" "$@" 2>&1 |
    show_sender || true
  show_app
}

STATUS_CHANGE='{"event":"status_change","from":"operational","to":"degraded","changed_at":"2024-01-15T10:30:00Z","reason":"High latency detected"}'
CAPACITY_ALERT='{"event":"capacity_alert","level":"warning","hours":72,"mrr":15000,"threshold":0.8,"current_capacity":0.85}'
INCIDENT_CREATED='{"event":"incident_created","id":"inc_demo_0001","title":"Elevated error rate on the public API","severity":"major","status":"investigating","created_at":"2024-01-15T10:31:00Z"}'
SUBSCRIPTION_CREATED='{"event":"whop_subscription_created","customer_email":"customer@example.com","tier":"pro","billing_sku":"sku_pro_monthly","timestamp":"2024-01-15T10:32:00Z"}'

title "status_change, correctly signed: forwarded"
deliver "$(body_file status_change "$STATUS_CHANGE")"

title "capacity_alert, correctly signed: forwarded"
deliver "$(body_file capacity_alert "$CAPACITY_ALERT")"

title "incident_created (id inc_demo_0001), correctly signed: forwarded"
INCIDENT_FILE=$(body_file incident_created "$INCIDENT_CREATED")
deliver "$INCIDENT_FILE"

title "whop_subscription_created, correctly signed: forwarded"
deliver "$(body_file subscription_created "$SUBSCRIPTION_CREATED")"

title "tampered: signed, then the body changed on the way (degraded -> operational): refused"
TAMPER_FILE=$(body_file tamper_signed "$STATUS_CHANGE")
TAMPERED_BODY=${STATUS_CHANGE/\"to\":\"degraded\"/\"to\":\"operational\"}
CURL_HEADERS=()
while IFS= read -r header_line; do
  [[ -n $header_line ]] && CURL_HEADERS+=(-H "$header_line")
done < <("$HOOKWARDEN" sign --config "$CONFIG" --route aj --body "$TAMPER_FILE")
((${#CURL_HEADERS[@]} > 0)) || die "hookwarden sign printed no headers"
curl -sS -o "$WORK/tampered.response" -w 'HTTP %{http_code}\n' \
  "${CURL_HEADERS[@]}" --data-binary "$TAMPERED_BODY" "$WEBHOOK_URL" >"$WORK/tampered.status" || true
{
  cat "$WORK/tampered.status"
  cat "$WORK/tampered.response" 2>/dev/null
} | show_sender
show_app

title "stale: capacity_alert signed 15 minutes ago (a captured request, replayed late): refused"
STALE_TS=$(date -u -d '15 minutes ago' +%Y-%m-%dT%H:%M:%SZ)
echo "timestamp: $STALE_TS"
deliver "$(body_file stale "$CAPACITY_ALERT")" --timestamp "$STALE_TS"

title "duplicate: incident inc_demo_0001 again (a sender retry, freshly signed): answered, not re-sent to the app"
deliver "$INCIDENT_FILE"

printf '\n== done: 4 events forwarded once each; tampered, stale and duplicate kept from the app ==\n'
