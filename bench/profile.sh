#!/usr/bin/env bash
# Profiles hookwarden under one kind of load, with the CPU budget of bench/run.sh: where
# its CPU time goes (perf, sampling the cpu-clock, with DWARF call graphs) and how many
# system calls of each kind one request costs (strace -c).
#
#   bench/profile.sh [--kind unique|duplicate|forged] [--path /webhooks/aj]
#                    [--sync interval|always] [--body-bytes 1024] [--seconds 8] [--out DIR]
#
# --path /bench/unrouted profiles the unverified forwarding route. Installs linux-perf,
# strace and nginx from Debian when missing (as root). Writes perf.data, the reports and
# the logs to DIR (default target/bench-profile/<kind>-<time>), and prints the summaries.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIND=unique
URL_PATH=/webhooks/aj
SYNC=interval
BODY=1024
SECONDS_PROFILED=8
OUT=""
while (($# > 0)); do
  case "$1" in
    --kind) KIND=$2; shift ;;
    --path) URL_PATH=$2; shift ;;
    --sync) SYNC=$2; shift ;;
    --body-bytes) BODY=$2; shift ;;
    --seconds) SECONDS_PROFILED=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
PROXY_CPU=${PROXY_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
OUT=${OUT:-$ROOT/target/bench-profile/$KIND-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/up/tmp"
OUT=$(cd "$OUT" && pwd)
export AJ_WEBHOOK_SHARED_SECRET=bench-secret-0123456789abcdef0123456789abcdef

missing=()
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
if ((${#missing[@]} > 0)); then
  [[ $(id -u) == 0 ]] || { echo "profile.sh: install ${missing[*]} first" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

(cd "$ROOT" && cargo build --release --quiet --bin hookwarden)
(cd "$ROOT" && cargo build --release --quiet --manifest-path bench/loadgen/Cargo.toml \
  --target-dir target/bench-loadgen)
cp "$ROOT/target/release/hookwarden" "$ROOT/target/bench-loadgen/release/hwload" "$OUT/"
LOAD=$OUT/hwload

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_UP P_HW P_ADMIN <<<"$("$LOAD" ports 3)"
user=""
[[ $(id -u) == 0 ]] && user="user root;"
cat >"$OUT/up/nginx.conf" <<EOF
$user
worker_processes 1;
pid $OUT/up/nginx.pid;
error_log $OUT/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $OUT/up/tmp/body;
  proxy_temp_path $OUT/up/tmp/proxy;
  fastcgi_temp_path $OUT/up/tmp/fastcgi;
  uwsgi_temp_path $OUT/up/tmp/uwsgi;
  scgi_temp_path $OUT/up/tmp/scgi;
  keepalive_requests 100000000;
  client_max_body_size 2m;
  server { listen 127.0.0.1:$P_UP; location / { return 200 "ok\n"; } }
}
EOF
taskset -c "$GEN_CPU" nginx -p "$OUT/up" -c "$OUT/up/nginx.conf" -g 'daemon off;' &
PIDS+=("$!")
"$LOAD" wait "127.0.0.1:$P_UP" 10

cat >"$OUT/hookwarden.toml" <<EOF
[server]
listen = "127.0.0.1:$P_HW"
admin_listen = "127.0.0.1:$P_ADMIN"
threads = 1
unmatched = "forward"

[upstream]
url = "http://127.0.0.1:$P_UP"

[store]
path = "$OUT/store"
sync = "$SYNC"

[[routes]]
name = "aj"
path = "/webhooks/aj"
scheme = "aj"
secrets = [{ env = "AJ_WEBHOOK_SHARED_SECRET" }]
EOF
taskset -c "$PROXY_CPU" "$OUT/hookwarden" run --config "$OUT/hookwarden.toml" 2>"$OUT/hookwarden.log" &
HW_PID=$!
PIDS+=("$HW_PID")
"$LOAD" wait "127.0.0.1:$P_HW" 30

load() {
  taskset -c "$GEN_CPU" "$LOAD" load --addr "127.0.0.1:$P_HW" --path "$URL_PATH" --kind "$KIND" \
    --body-bytes "$BODY" --connections 32 --warmup 0 --duration "$1" --run-id "$2-$(date +%s)"
}
field() { sed -n "s/.*[[:space:]]$1=\\([^[:space:]]*\\).*/\\1/p" <<<" $2"; }

# Where the CPU goes. sled's I/O pool starts and ends threads under load; perf ignores
# the ones it cannot follow.
load $((SECONDS_PROFILED + 4)) perf >"$OUT/perf-load.txt" &
LOADER=$!
sleep 2
perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$HW_PID" -o "$OUT/perf.data" \
  -- sleep "$SECONDS_PROFILED" 2>"$OUT/perf-record.log" || true
wait "$LOADER" 2>/dev/null || true
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none --percent-limit 0.7 \
  2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/perf-self.txt" || true
perf report -i "$OUT/perf.data" --children --sort sym --stdio -g none --percent-limit 3 \
  2>/dev/null | grep -v '^#' | grep -v '^$' | grep -E 'hookwarden::|sled::|pingora|sync_file_range|futex|send|recv' \
  | cut -c1-200 >"$OUT/perf-children.txt" || true
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | head -20 >"$OUT/perf-threads.txt" || true

# What one request costs in system calls (strace slows the process: counts, not times).
load 7 strace >"$OUT/strace-load.txt" &
LOADER=$!
sleep 2
before=$("$LOAD" get "127.0.0.1:$P_ADMIN" /metrics | awk '/^hookwarden_requests_total/ {n += $2} END {print n + 0}')
timeout -s INT 4 strace -c -f -p "$HW_PID" -o "$OUT/strace.txt" 2>/dev/null || true
after=$("$LOAD" get "127.0.0.1:$P_ADMIN" /metrics | awk '/^hookwarden_requests_total/ {n += $2} END {print n + 0}')
wait "$LOADER" 2>/dev/null || true
requests=$((after - before))
awk -v n="$requests" 'NR > 2 && $4 ~ /^[0-9]+$/ && n > 0 {
  printf "%-18s %10d calls  %7.2f per request\n", $NF, $4, $4 / n }' "$OUT/strace.txt" \
  | sort -k2 -nr | head -15 >"$OUT/syscalls-per-request.txt"

echo "== load while profiled: $(cut -d' ' -f7,9,11 "$OUT/perf-load.txt") (kind $KIND, $BODY B, $URL_PATH, sync $SYNC)"
echo "== CPU by thread"
cat "$OUT/perf-threads.txt"
echo "== CPU by function, self"
head -30 "$OUT/perf-self.txt"
echo "== CPU by function, with callees (hookwarden, sled, pingora and syscall frames)"
head -40 "$OUT/perf-children.txt"
echo "== system calls per request ($requests requests under strace)"
cat "$OUT/syscalls-per-request.txt"
echo "== files in $OUT"
