#!/usr/bin/env bash
# Turns bench/run.sh's results.txt (one `key=value` line per run) into the Markdown
# report: machine, tables, and each target of issue 7 as met or missed.
#
#   bench/report.sh RESULTS RSS-SAMPLES LOADAVG-BEFORE LOADAVG-AFTER
set -euo pipefail

RESULTS=$1
RSS=$2
LOAD_BEFORE=$3
LOAD_AFTER=$4

echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) CPUs; $(lscpu 2>/dev/null | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
echo "- load average before the run: $LOAD_BEFORE; after: $LOAD_AFTER"
echo "- proxy under test pinned to CPU ${PROXY_CPU:-0}; load generator and upstream nginx to CPU ${GEN_CPU:-1} (taskset)"
echo
echo '```text'
echo "\$ nproc"
nproc
echo "\$ lscpu | head -n 12"
lscpu 2>/dev/null | head -n 12
echo '```'
echo

awk -v rss_file="$RSS" '
function get(line, key,    n, i, kv, parts) {
  n = split(line, parts, " ")
  for (i = 1; i <= n; i++) {
    split(parts[i], kv, "=")
    if (kv[1] == key) return kv[2]
  }
  return ""
}
function f1(x) { return sprintf("%.1f", x) }
function f2(x) { return sprintf("%.2f", x) }
function verdict(ok) { return ok ? "**met**" : "**missed**" }
{
  line[NR] = $0
  t = get($0, "target"); k = get($0, "kind"); b = get($0, "body_bytes")
  key = t "|" k "|" b
  rps[key] = get($0, "rps"); p99[key] = get($0, "p99_ms"); cpu[key] = get($0, "cpu_us_per_req")
  if (t == "nginx-proxy" && k == "unique") { base[b] = get($0, "rps"); basecpu[b] = get($0, "cpu_us_per_req") }
}
END {
  print "### Throughput (closed loop, " get(line[1], "connections") " keep-alive connections)"
  print ""
  print "| target | kind | body | req/s | p50 ms | p99 ms | p99.9 ms | errors | app received / expected | CPU us/req | RSS MiB | vs nginx proxy: req/s | vs nginx proxy: CPU |"
  print "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for (i = 1; i <= NR; i++) {
    l = line[i]; t = get(l, "target")
    if (t ~ /@half$/ || t ~ /^(memory|sweep|scale-)/) continue
    b = get(l, "body_bytes")
    if (get(l, "skipped") != "") {
      printf "| %s | %s | %s | skipped: the target hung in an earlier run | | | | | | | | | |\n", t, get(l, "kind"),
        (b >= 1024 ? b / 1024 " KiB" : b " B")
      continue
    }
    ratio = (b in base && base[b] > 0) ? f2(get(l, "rps") / base[b]) : "-"
    c = get(l, "cpu_us_per_req")
    cratio = (b in basecpu && c > 0) ? f2(basecpu[b] / c) : "-"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s |\n", t, get(l, "kind"),
      (b >= 1024 ? b / 1024 " KiB" : b " B"), f1(get(l, "rps")), get(l, "p50_ms"), get(l, "p99_ms"),
      get(l, "p999_ms"), get(l, "errors"), get(l, "received"), get(l, "reached_app"), get(l, "cpu_us_per_req"),
      f1(get(l, "rss_kib") / 1024), ratio, cratio
  }
  print ""
  print "### Latency at half of nginx proxy_pass maximum (open loop, 1 KiB unique)"
  print ""
  print "| target | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors |"
  print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for (i = 1; i <= NR; i++) {
    l = line[i]; t = get(l, "target")
    if (t !~ /@half$/) continue
    if (get(l, "skipped") != "") { printf "| %s | skipped: the target hung in an earlier run | | | | | |\n", t; continue }
    printf "| %s | %s | %s | %s | %s | %s | %s |\n", t, get(l, "rate"), f1(get(l, "rps")),
      get(l, "p50_ms"), get(l, "p99_ms"), get(l, "p999_ms"), get(l, "errors")
    half[t] = get(l, "p99_ms")
  }

  # Memory: RSS samples (seconds since the fill began, KiB).
  for (i = 1; i <= NR; i++) if (get(line[i], "target") == "memory") mem = line[i]
  steady_from = get(mem, "steady_start"); steady_len = get(mem, "steady_seconds")
  n = 0; peak = 0
  while ((getline s < rss_file) > 0) {
    split(s, f, " ")
    if (f[2] + 0 > peak) peak = f[2]
    if (f[3] + 0 > threads) threads = f[3]
    if (f[1] >= steady_from && f[1] <= steady_from + steady_len) { n++; st[n] = f[2] }
  }
  tenth = int(n / 10); if (tenth < 1) tenth = 1
  first = 0; last = 0
  for (j = 1; j <= tenth && j <= n; j++) first += st[j]
  for (j = n - tenth + 1; j <= n && j >= 1; j++) last += st[j]
  first = n ? first / tenth : 0; last = n ? last / tenth : 0
  rss_fill = get(mem, "rss_at_fill_kib") / 1024
  print ""
  print "### Memory (sync = interval; the default store cache bound, 16 MiB)"
  print ""
  print "| records stored (deliveries) | fill time s | RSS then MiB | steady load | RSS first tenth MiB | RSS last tenth MiB | peak MiB | peak threads | records at end | steady p99 ms | steady errors |"
  print "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  printf "| %d (%d) | %s | %s | %s s at %s req/s | %s | %s | %s | %s | %d | %s | %s |\n", 2 * get(mem, "deliveries"),
    get(mem, "deliveries"), get(mem, "fill_seconds"), f1(rss_fill), steady_len, get(mem, "steady_rate"),
    f1(first / 1024), f1(last / 1024), f1(peak / 1024), threads, 2 * get(mem, "deliveries_end"), get(mem, "p99_ms"),
    get(mem, "errors")

  # Scale.
  small = ""; big = ""
  for (i = 1; i <= NR; i++) {
    t = get(line[i], "target")
    if (t ~ /^scale-/) { if (small == "") small = line[i]; else big = line[i] }
  }
  print ""
  print "### Scale (1 KiB unique, closed loop)"
  print ""
  print "| records stored before the run (deliveries) | req/s | p99 ms | CPU us/req | RSS MiB |"
  print "| ---: | ---: | ---: | ---: | ---: |"
  split(small " \n" big, both, "\n")
  for (j = 1; j <= 2; j++) {
    l = both[j]; if (l == "" || l == " ") continue
    n = substr(get(l, "target"), 7)
    printf "| %d (%s) | %s | %s | %s | %s |\n", 2 * n, n, f1(get(l, "rps")), get(l, "p99_ms"),
      get(l, "cpu_us_per_req"), f1(get(l, "rss_kib") / 1024)
  }

  # Sweep.
  for (i = 1; i <= NR; i++) if (get(line[i], "target") == "sweep") sw = line[i]
  print ""
  print "### Sweep of expired records under a steady load"
  print ""
  print "| records swept | load | sweep done at s (after load start) | mean 1 s p99 during ms | worst 1 s p99 during ms | mean 1 s p99 after ms | errors |"
  print "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
  printf "| %s | %s req/s for %s s | %s | %s | %s | %s | %s |\n", get(sw, "swept_keys"), get(sw, "rate"),
    get(sw, "seconds"), get(sw, "sweep_end_s"), get(sw, "during_mean_p99_ms"), get(sw, "during_worst_p99_ms"),
    get(sw, "after_mean_p99_ms"), get(sw, "errors")

  # Targets.
  print ""
  print "### Targets of issue 7"
  print ""
  iv = rps["hw-interval|unique|1024"]; al = rps["hw-always|unique|1024"]; ng = base[1024]
  r = ng > 0 ? iv / ng : 0
  printf "- interval, unique 1 KiB: %s req/s = %s x nginx proxy (target >= 0.8): %s", f1(iv), f2(r), verdict(r >= 0.8)
  printf "; by CPU per request %s x", f2(cpu["hw-interval|unique|1024"] > 0 ? basecpu[1024] / cpu["hw-interval|unique|1024"] : 0)
  printf " (req/s at 16 KiB: %s x, 256 KiB: %s x)\n", f2(base[16384] ? rps["hw-interval|unique|16384"] / base[16384] : 0),
    f2(base[262144] ? rps["hw-interval|unique|262144"] / base[262144] : 0)
  d = half["hw-interval@half"] - half["nginx-proxy@half"]
  printf "- interval p99 at half load: %s ms vs nginx %s ms, %+.3f ms (target <= +1 ms): %s\n",
    half["hw-interval@half"], half["nginx-proxy@half"], d, verdict(half["hw-interval@half"] > 0 && d <= 1.0)
  r = iv > 0 ? al / iv : 0
  printf "- always vs interval, unique 1 KiB: %s x (target >= 0.5): %s\n", f2(r), verdict(r >= 0.5)
  split("interval always", modes, " ")
  for (m = 1; m <= 2; m++) {
    mode = modes[m]; u = rps["hw-" mode "|unique|1024"]
    dp = rps["hw-" mode "|duplicate|1024"]; fg = rps["hw-" mode "|forged|1024"]
    printf "- %s: duplicate %s req/s, forged %s req/s vs unique %s req/s (target >= unique): %s\n",
      mode, f1(dp), f1(fg), f1(u), verdict(dp >= u && fg >= u)
  }
  flat = first > 0 ? (last - first) / first : 0
  printf "- memory: %s MiB at %d records (target < 64 MiB): %s; over %s s of steady load RSS went %s -> %s MiB (%+.1f%%, flat means within 10%%): %s\n",
    f1(rss_fill), 2 * get(mem, "deliveries"), verdict(rss_fill < 64), steady_len, f1(first / 1024), f1(last / 1024),
    flat * 100, verdict(flat <= 0.10)
  cs = get(small, "cpu_us_per_req"); cb = get(big, "cpu_us_per_req")
  rs = get(small, "rps"); rb = get(big, "rps")
  r = cs > 0 ? cb / cs : 0
  printf "- scale: CPU per request %s us with %d records stored vs %s us with %d (%s x, target <= 1.5): %s; req/s %s vs %s (%s x)\n",
    cb, 2 * substr(get(big, "target"), 7), cs, 2 * substr(get(small, "target"), 7), f2(r), verdict(r > 0 && r <= 1.5),
    f1(rb), f1(rs), f2(rb > 0 ? rs / rb : 0)
  worst = get(sw, "during_worst_p99_ms"); basep = get(sw, "after_mean_p99_ms")
  printf "- sweep of %s expired records: worst 1 s p99 during it %s ms vs %s ms after it, same load (target < 2 x): %s\n",
    get(sw, "swept_keys"), worst, basep, verdict(worst > 0 && basep > 0 && worst < 2 * basep && get(sw, "sweep_end_s") != "none")
}' "$RESULTS"
