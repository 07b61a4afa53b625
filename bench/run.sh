#!/usr/bin/env bash
# hookwarden's performance benchmark: nginx and hookwarden side by side, one run, one
# CPU budget. See bench/README.md for what each target and phase means.
#
#   bench/run.sh [--smoke] [--long] [--full-scale] [--out DIR]
#
#   --smoke       everything tiny (seconds), for CI: checks the harness, not the numbers
#   --long        the memory phase holds its steady load for 10 minutes instead of 1
#   --full-scale  the scale phase fills the store to 10 million records (5 million
#                 deliveries; most of an hour at today's store speed) instead of reusing
#                 the 1 million of the memory phase
#   --out DIR     where logs, stores and results go (default target/bench-run/<time>)
#
# A "record" is what the store counts (hookwarden_store_entries): each delivery stores two,
# its event id and its signature.
#
# Environment: PROXY_CPU (default 0) runs the proxy under test; GEN_CPU (default 1) runs
# the load generator and the upstream app. HW_THREADS (default 1) is hookwarden's worker
# thread count. CONNS (default 32) keep-alive connections per load run.
#
# Installs nginx from Debian when missing (as root), builds hookwarden (release) and the
# load generator (bench/loadgen, its own cargo project and target directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=default
LONG=0
FULL_SCALE=0
OUT=""
while (($# > 0)); do
  case "$1" in
    --smoke) MODE=smoke ;;
    --long) LONG=1 ;;
    --full-scale) FULL_SCALE=1 ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done

PROXY_CPU=${PROXY_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
HW_THREADS=${HW_THREADS:-1}
CONNS=${CONNS:-32}
BODIES=(1024 16384 262144)
if [[ $MODE == smoke ]]; then
  WARMUP=0.2 DURATION=1 MEM_DELIVERIES=1000 STEADY=2 SCALE_SMALL=100 SCALE_BIG=1000
  SWEEP_SECONDS=3 DUP_SET=50 FILL_CONNS=8 TIMEOUT=3
else
  WARMUP=2 DURATION=8 MEM_DELIVERIES=500000 STEADY=60 SCALE_SMALL=5000 SCALE_BIG=500000
  SWEEP_SECONDS=90 DUP_SET=1000 FILL_CONNS=64 TIMEOUT=10
fi
if ((LONG)); then STEADY=600; fi
if ((FULL_SCALE)); then
  if [[ $MODE == smoke ]]; then SCALE_BIG=5000; else SCALE_BIG=5000000; fi
fi

OUT=${OUT:-$ROOT/target/bench-run/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.txt
: >"$RESULTS"
export AJ_WEBHOOK_SHARED_SECRET=bench-secret-0123456789abcdef0123456789abcdef

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

# ---------------------------------------------------------------- tools and builds
need_root_install() {
  if [[ $(id -u) != 0 ]]; then
    echo "run.sh: $* missing and not root; install it from Debian first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep Debian from starting its own nginx service on port 80 during the install.
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  ((added)) && rm -f "$policy"
  return 0
}

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make >/dev/null 2>&1 || missing+=(make)
((${#missing[@]} == 0)) || need_root_install "${missing[@]}"
command -v cargo >/dev/null 2>&1 || { echo "run.sh: cargo (Rust toolchain) is required" >&2; exit 1; }
if (($(nproc) < 2)); then
  log "only $(nproc) CPU: proxy and load generator will share it; numbers are not comparable"
  GEN_CPU=$PROXY_CPU
fi

log "building hookwarden (release) and the load generator"
(cd "$ROOT" && cargo build --release --quiet --bin hookwarden)
(cd "$ROOT" && cargo build --release --quiet --manifest-path bench/loadgen/Cargo.toml \
  --target-dir target/bench-loadgen)
# Private copies: other builds may replace target/ binaries while we measure.
cp "$ROOT/target/release/hookwarden" "$OUT/hookwarden"
cp "$ROOT/target/bench-loadgen/release/hwload" "$OUT/hwload"
HW=$OUT/hookwarden
LOAD=$OUT/hwload

# ---------------------------------------------------------------- process helpers
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A process and its direct children (nginx's master and worker).
family() {
  local pid=$1
  echo "$pid"
  cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$' || true
}

# User plus system CPU of a process family, in clock ticks (1/100 s).
cpu_ticks() {
  local total=0 p f
  for p in $(family "$1"); do
    f=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    f=${f##*) }
    read -r -a fields <<<"$f"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# Resident memory of a process family, in KiB.
rss_kib() {
  local total=0 p v
  for p in $(family "$1"); do
    v=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null) || v=0
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

stop() {
  local pid=$1 i keep=() p
  for p in "${PIDS[@]}"; do
    [[ $p == "$pid" ]] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

read -r P_UP P_DIRECT P_NGX P_HW P_ADMIN <<<"$("$LOAD" ports 5)"
UP_ADDR=127.0.0.1:$P_UP

# start_nginx NAME CPU PORT LOCATION-BODY: one worker, pinned, in the foreground of a
# background job; its access log counts what reached it. Sets NGINX_PID.
start_nginx() {
  local name=$1 cpu=$2 port=$3 location=$4 dir=$OUT/$1 user=""
  mkdir -p "$dir/tmp"
  [[ $(id -u) == 0 ]] && user="user root;"
  cat >"$dir/nginx.conf" <<EOF
$user
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '\$status \$request_length';
  access_log $dir/access.log bench buffer=256k flush=1s;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_max_body_size 2m;
  client_body_buffer_size 1m;
  upstream app {
    server $UP_ADDR;
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / { $location }
  }
}
EOF
  : >"$dir/access.log"
  taskset -c "$cpu" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>>"$dir/error.log" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  "$LOAD" wait "127.0.0.1:$port" 10 || { cat "$dir/error.log" >&2; exit 1; }
}

# Lines in an nginx access log, after making nginx write out its buffer.
received() {
  local name=$1 pid=$2 last=-1 now
  kill -USR1 "$pid" 2>/dev/null || true
  while :; do
    sleep 0.2
    now=$(wc -l <"$OUT/$name/access.log")
    [[ $now == "$last" ]] && break
    last=$now
  done
  echo "$now"
}

# start_hookwarden NAME SYNC STORE RETENTION [TOLERANCE]: pinned to PROXY_CPU. Sets HW_PID.
start_hookwarden() {
  local name=$1 sync=$2 store=$3 retention=$4 tolerance=${5:-300} dir=$OUT/$1
  mkdir -p "$dir"
  cat >"$dir/hookwarden.toml" <<EOF
[server]
listen = "127.0.0.1:$P_HW"
admin_listen = "127.0.0.1:$P_ADMIN"
threads = $HW_THREADS
unmatched = "forward"

[upstream]
url = "http://$UP_ADDR"
timeout_seconds = 30

[store]
path = "$store"
retention_seconds = $retention
sync = "$sync"

[[routes]]
name = "aj"
path = "/webhooks/aj"
scheme = "aj"
tolerance_seconds = $tolerance
max_body_bytes = 1048576
secrets = [{ env = "AJ_WEBHOOK_SHARED_SECRET" }]
EOF
  "$HW" check --config "$dir/hookwarden.toml" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
  taskset -c "$PROXY_CPU" "$HW" run --config "$dir/hookwarden.toml" 2>>"$dir/hookwarden.log" &
  HW_PID=$!
  PIDS+=("$HW_PID")
  "$LOAD" wait "127.0.0.1:$P_HW" 30 || { tail "$dir/hookwarden.log" >&2; exit 1; }
}

RUN_SEQ=0
HUNG=""
# load TARGET PID PORT PATH KIND BODY-BYTES [hwload flags...]: one measured run, appended
# to results.txt as key=value pairs. The upstream's count comes from UPSTREAM_NAME/PID.
load() {
  local target=$1 pid=$2 port=$3 path=$4 kind=$5 body=$6
  shift 6
  RUN_SEQ=$((RUN_SEQ + 1))
  # A target that stopped answering is not measured again (each try would only wait
  # out the time-outs); its row says so.
  if [[ " $HUNG " == *" ${target%@*} "* ]]; then
    echo "target=$target kind=$kind body_bytes=$body skipped=hung" >>"$RESULTS"
    log "$target $kind $body B: skipped, the target stopped answering in an earlier run"
    return 0
  fi
  local run_id r0 c0 line r1 c1 answered
  run_id="$(date +%s)-$RUN_SEQ"
  r0=$(received "$UPSTREAM_NAME" "$UPSTREAM_PID")
  c0=$(cpu_ticks "$pid")
  line=$(taskset -c "$GEN_CPU" "$LOAD" load --addr "127.0.0.1:$port" --path "$path" \
    --kind "$kind" --body-bytes "$body" --connections "$CONNS" --warmup "$WARMUP" \
    --duration "$DURATION" --run-id "$run_id" --dup-set "$DUP_SET" --timeout "$TIMEOUT" "$@")
  c1=$(cpu_ticks "$pid")
  r1=$(received "$UPSTREAM_NAME" "$UPSTREAM_PID")
  answered=$(sed -n 's/.*answered_all=\([0-9]*\).*/\1/p' <<<"$line")
  line="target=$target $line received=$((r1 - r0)) cpu_us_per_req=$(((c1 - c0) * 10000 / (answered > 0 ? answered : 1))) rss_kib=$(rss_kib "$pid")"
  echo "$line" >>"$RESULTS"
  if [[ $(field requests "$line") == 0 && $(field errors "$line") != 0 ]]; then
    HUNG="$HUNG ${target%@*}"
  fi
  log "$(awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-16s %-9s %6s B  %9s req/s  p50 %7s  p99 %7s  p99.9 %7s ms  errors %s  received %s/%s",
      v["target"], v["kind"], v["body_bytes"], v["rps"], v["p50_ms"], v["p99_ms"], v["p999_ms"],
      v["errors"], v["received"], v["reached_app"] }' <<<"$line")"
}

field() { sed -n "s/.*[[:space:]]$1=\\([^[:space:]]*\\).*/\\1/p" <<<" $2"; }

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) CPUs, load average before the run: $LOADAVG_START; output in $OUT"
log "proxy under test on CPU $PROXY_CPU; load generator and upstream app on CPU $GEN_CPU"

# ---------------------------------------------------------------- phase 1: throughput
start_nginx upstream "$GEN_CPU" "$P_UP" 'return 200 "ok\n";'
UPSTREAM_NAME=upstream UPSTREAM_PID=$NGINX_PID
APP_PID=$NGINX_PID

# The upstream alone, as the target under test: its own instance on the proxy's CPU.
start_nginx direct "$PROXY_CPU" "$P_DIRECT" 'return 200 "ok\n";'
UPSTREAM_NAME=direct UPSTREAM_PID=$NGINX_PID
for body in "${BODIES[@]}"; do
  load nginx-direct "$NGINX_PID" "$P_DIRECT" /webhooks/aj unique "$body"
done
stop "$NGINX_PID"
UPSTREAM_NAME=upstream UPSTREAM_PID=$APP_PID

start_nginx proxy "$PROXY_CPU" "$P_NGX" 'proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'
NGX_PID=$NGINX_PID
for body in "${BODIES[@]}"; do
  load nginx-proxy "$NGX_PID" "$P_NGX" /webhooks/aj unique "$body"
done
NGX_RPS=$(field rps "$(grep 'target=nginx-proxy kind=unique body_bytes=1024 ' "$RESULTS")")
HALF_RATE=$(awk -v r="$NGX_RPS" 'BEGIN { printf "%d", r / 2 }')
log "nginx proxy_pass max at 1 KiB: $NGX_RPS req/s; half of it: $HALF_RATE req/s"
load nginx-proxy@half "$NGX_PID" "$P_NGX" /webhooks/aj unique 1024 --rate "$HALF_RATE"
stop "$NGX_PID"

for sync in interval always; do
  start_hookwarden "hw-$sync" "$sync" "$OUT/hw-$sync/store" 604800
  if [[ $sync == always ]]; then
    # One connection: one delivery at a time, so one flush per delivery and no group.
    load "hw-always/1conn" "$HW_PID" "$P_HW" /webhooks/aj unique 1024 --connections 1
  fi
  for body in "${BODIES[@]}"; do
    load "hw-$sync" "$HW_PID" "$P_HW" /webhooks/aj unique "$body"
  done
  load "hw-$sync" "$HW_PID" "$P_HW" /webhooks/aj duplicate 1024
  load "hw-$sync" "$HW_PID" "$P_HW" /webhooks/aj forged 1024
  load "hw-$sync@half" "$HW_PID" "$P_HW" /webhooks/aj unique 1024 --rate "$HALF_RATE"
  if [[ $sync == interval ]]; then
    # The same process on a path with no route: pingora's proxying, no verification.
    for body in "${BODIES[@]}"; do
      load hw-forward "$HW_PID" "$P_HW" /bench/unrouted unique "$body"
    done
  fi
  stop "$HW_PID"
done
# Later phases run at half of what hookwarden itself sustains, so that they measure the
# store, not a queue.
HW_RPS=$(field rps "$(grep 'target=hw-interval kind=unique body_bytes=1024 ' "$RESULTS")")
HW_HALF=$(awk -v r="$HW_RPS" 'BEGIN { r = int(r / 2); print (r < 10 ? 10 : r) }')
log "hookwarden interval max at 1 KiB: $HW_RPS req/s; later phases run at $HW_HALF req/s"

# fill PORT DELIVERIES NAME: as fast as the proxy takes them (not a measurement).
fill() {
  taskset -c "$GEN_CPU" "$LOAD" load --addr "127.0.0.1:$1" --requests "$2" --warmup 0 \
    --duration 0 --connections "$FILL_CONNS" --timeout "$TIMEOUT" --run-id "$3-$(date +%s)"
}

# ---------------------------------------------------------------- phase 2: scale, small store
start_hookwarden hw-scale-small interval "$OUT/hw-scale-small/store" 604800
fill "$P_HW" "$SCALE_SMALL" fill-small >"$OUT/hw-scale-small/fill.txt"
load "scale-$SCALE_SMALL" "$HW_PID" "$P_HW" /webhooks/aj unique 1024
stop "$HW_PID"

# ---------------------------------------------------------------- phase 3: memory
# A fresh store filled to MEM_DELIVERIES as fast as it takes them, then a steady load
# at HW_HALF; RSS sampled every second throughout.
MEM_STORE=$OUT/hw-memory/store
start_hookwarden hw-memory interval "$MEM_STORE" 604800
MEM_PID=$HW_PID
(
  t0=$(date +%s)
  while kill -0 "$MEM_PID" 2>/dev/null; do
    printf '%s %s %s\n' $(($(date +%s) - t0)) "$(rss_kib "$MEM_PID")" \
      "$(awk '/^Threads:/ {print $2}' /proc/"$MEM_PID"/status 2>/dev/null)"
    sleep 1
  done
) >"$OUT/hw-memory/rss.txt" &
SAMPLER=$!
PIDS+=("$SAMPLER")
fill_start=$(date +%s)
fill "$P_HW" "$MEM_DELIVERIES" fill-mem >"$OUT/hw-memory/fill.txt"
FILL_SECONDS=$(($(date +%s) - fill_start))
RSS_AT_FILL=$(rss_kib "$MEM_PID")
log "memory: $MEM_DELIVERIES deliveries stored in ${FILL_SECONDS}s; RSS $((RSS_AT_FILL / 1024)) MiB"
steady_start=$(($(date +%s) - fill_start))
taskset -c "$GEN_CPU" "$LOAD" load --addr "127.0.0.1:$P_HW" --rate "$HW_HALF" --warmup 0 \
  --duration "$STEADY" --connections "$CONNS" --timeout "$TIMEOUT" \
  --run-id "steady-$(date +%s)" >"$OUT/hw-memory/steady.txt"
RSS_AT_END=$(rss_kib "$MEM_PID")
STORED=$((MEM_DELIVERIES + $(field reached_app "$(cat "$OUT/hw-memory/steady.txt")")))
echo "target=memory deliveries=$MEM_DELIVERIES fill_seconds=$FILL_SECONDS rss_at_fill_kib=$RSS_AT_FILL rss_end_kib=$RSS_AT_END steady_seconds=$STEADY steady_start=$steady_start steady_rate=$HW_HALF deliveries_end=$STORED $(cat "$OUT/hw-memory/steady.txt")" >>"$RESULTS"

# ---------------------------------------------------------------- phase 4: scale, large store
SWEEP_STORE=$MEM_STORE
if ((SCALE_BIG > STORED)); then
  # Keep the memory phase's store for the sweep phase, and grow the original.
  stop "$MEM_PID"
  stop "$SAMPLER"
  SAMPLER=""
  SWEEP_STORE=$OUT/hw-sweep/store
  mkdir -p "$OUT/hw-sweep" && cp -a "$MEM_STORE" "$SWEEP_STORE"
  start_hookwarden hw-scale-big interval "$MEM_STORE" 604800
  MEM_PID=$HW_PID
  log "scale: filling the store from $STORED to $SCALE_BIG deliveries"
  fill "$P_HW" $((SCALE_BIG - STORED)) fill-big >"$OUT/hw-scale-big/fill.txt"
  STORED=$SCALE_BIG
fi
load "scale-$STORED" "$MEM_PID" "$P_HW" /webhooks/aj unique 1024
stop "$MEM_PID"
if [[ -n $SAMPLER ]]; then stop "$SAMPLER"; fi

# ---------------------------------------------------------------- phase 5: sweep under load
# Restarted with a 4 s retention (and so a 2 s timestamp tolerance, which the config
# check requires), the store's first sweep (at start) finds every older record expired and removes them while a steady load at HW_HALF runs.
# Every record must be older than the retention when the sweep starts (smoke runs are quick).
if [[ $MODE == smoke ]]; then sleep 5; fi
start_hookwarden hw-sweep interval "$SWEEP_STORE" 4 2
SWEEP_PID=$HW_PID
(
  while kill -0 "$SWEEP_PID" 2>/dev/null; do
    printf '%s %s\n' "$(date +%s.%N)" "$("$LOAD" get "127.0.0.1:$P_ADMIN" /metrics 2>/dev/null |
      awk '/^hookwarden_store_sweeps_total/ {s = $2} /^hookwarden_store_swept_records_total/ {r = $2}
        END {print s + 0, r + 0}')"
    sleep 0.5
  done
) >"$OUT/hw-sweep/sweeps.txt" &
POLLER=$!
PIDS+=("$POLLER")
sweep_t0=$(date +%s.%N)
taskset -c "$GEN_CPU" "$LOAD" load --addr "127.0.0.1:$P_HW" --rate "$HW_HALF" --warmup 0 \
  --duration "$SWEEP_SECONDS" --connections "$CONNS" --timeout "$TIMEOUT" --report-every 1 \
  --run-id "sweep-$(date +%s)" >"$OUT/hw-sweep/load.txt" 2>"$OUT/hw-sweep/intervals.txt"
stop "$POLLER"
stop "$SWEEP_PID"
# When the first sweep ended, in seconds since the load began.
SWEEP_END=$(awk -v t0="$sweep_t0" '$2 >= 1 { printf "%.1f", $1 - t0; exit }' "$OUT/hw-sweep/sweeps.txt")
SWEPT=$(awk '$2 >= 1 { print $3; exit }' "$OUT/hw-sweep/sweeps.txt")
read -r DURING_P99 DURING_WORST AFTER_P99 <<<"$(awk -v end="${SWEEP_END:-9999}" '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["t"] <= end + 1) { d += v["p99_ms"]; dn++; if (v["p99_ms"] > w) w = v["p99_ms"] }
    else { a += v["p99_ms"]; an++ } }
  END { printf "%.3f %.3f %.3f\n", dn ? d / dn : 0, w, an ? a / an : 0 }' "$OUT/hw-sweep/intervals.txt")"
echo "target=sweep swept_keys=${SWEPT:-none} sweep_end_s=${SWEEP_END:-none} during_mean_p99_ms=$DURING_P99 during_worst_p99_ms=$DURING_WORST after_mean_p99_ms=$AFTER_P99 $(cat "$OUT/hw-sweep/load.txt")" >>"$RESULTS"

stop "$APP_PID"
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- harness check
# Not a performance assertion: every nginx run and every hookwarden interval run must
# have had the answers its kind expects, and the app must have received exactly what the
# generator saw it answer, or the numbers above measure something else.
BROKEN=$(awk '$1 ~ /^target=(nginx-|hw-interval|hw-forward|scale-)/ && !/skipped=/ {
  for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  if (v["unexpected"] != 0 || v["received"] != v["reached_app"]) print $1, $2, $3 }' "$RESULTS")

PROXY_CPU=$PROXY_CPU GEN_CPU=$GEN_CPU bash "$ROOT/bench/report.sh" "$RESULTS" \
  "$OUT/hw-memory/rss.txt" "$LOADAVG_START" "$LOADAVG_END" | tee "$OUT/report.md"
log "done; raw results in $RESULTS, report in $OUT/report.md"
if [[ -n $BROKEN ]]; then
  log "harness check failed: unexpected answers or upstream counts in: $(echo $BROKEN)"
  exit 1
fi
