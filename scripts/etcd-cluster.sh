#!/usr/bin/env bash
# Starts (or reuses) a throwaway 3-member etcd cluster on loopback ports, for the cluster tests and CI.
#
#   eval "$(scripts/etcd-cluster.sh)"     # start or reuse, wait until healthy; prints the env on stdout
#   scripts/etcd-cluster.sh env           # print the env only (no start)
#   scripts/etcd-cluster.sh status        # exit 0 when every member answers /health, 1 otherwise
#   scripts/etcd-cluster.sh kill N        # SIGKILL member N (1..3), for failover tests
#   scripts/etcd-cluster.sh leader        # print the number (1..3) of the member that leads now
#   scripts/etcd-cluster.sh start         # (again) starts the members not running, keeping their data
#   scripts/etcd-cluster.sh stop          # stops every member and deletes the data dir
#
# Environment:
#   JORM_ETCD_DIR          data, logs and pids (default /dev/shm/jorm-etcd-$UID, else $TMPDIR)
#   JORM_ETCD_CLIENT_PORT  member 1's client port, members 2 and 3 the next ones (default 23791)
#   JORM_ETCD_PEER_PORT    member 1's peer port, likewise (default 23801)
#   JORM_ETCD_TIMEOUT_S    how long start waits for a healthy cluster (default 30)
# Two clusters side by side need a different dir and ports each (the fault tests start their own).
# stdout carries only `export JORM_ETCD_ENDPOINTS=...`; talk and errors go to stderr.
#
# Why tmpfs by default: the data is thrown away anyway, and on a loaded 2-core CI box disk fsync
# latency makes etcd miss heartbeats and re-elect, which would make the timing tests flaky.
set -euo pipefail

VERB="${1:-start}"
MEMBERS=(1 2 3)
if [ -z "${JORM_ETCD_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then JORM_ETCD_DIR="/dev/shm/jorm-etcd-$(id -u)"; else JORM_ETCD_DIR="${TMPDIR:-/tmp}/jorm-etcd-$(id -u)"; fi
fi
DIR="$JORM_ETCD_DIR"
CLIENT_PORT="${JORM_ETCD_CLIENT_PORT:-23791}"
PEER_PORT="${JORM_ETCD_PEER_PORT:-23801}"
TIMEOUT_S="${JORM_ETCD_TIMEOUT_S:-30}"
HOST=127.0.0.1
# Unique per dir and port set, so a member of another cluster on the same ports is never joined
TOKEN="jorm-$(printf '%s' "$DIR:$CLIENT_PORT:$PEER_PORT" | cksum | cut -d' ' -f1)"

log() { printf 'etcd-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

client_url() { printf 'http://%s:%d' "$HOST" $((CLIENT_PORT + $1 - 1)); }
peer_url() { printf 'http://%s:%d' "$HOST" $((PEER_PORT + $1 - 1)); }
endpoints() {
  local m out=""
  for m in "${MEMBERS[@]}"; do out="${out:+$out,}$(client_url "$m")"; done
  printf '%s' "$out"
}
initial_cluster() {
  local m out=""
  for m in "${MEMBERS[@]}"; do out="${out:+$out,}m$m=$(peer_url "$m")"; done
  printf '%s' "$out"
}
print_env() { printf 'export JORM_ETCD_ENDPOINTS=%s\n' "$(endpoints)"; }

# A pid from our pidfile is ours only while it still runs etcd with our data dir (pids get reused).
member_pid() {
  local pid
  pid="$(cat "$DIR/m$1.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-dir $DIR/m$1 " && printf '%s' "$pid"
}
member_healthy() { curl -fsS --max-time 2 "$(client_url "$1")/health" 2>/dev/null | grep -q '"health":"true"'; }

ensure_etcd() {
  command -v etcd >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || die "etcd is not installed (apt-get install etcd-server) and not root to install it"
  log "installing etcd-server with apt-get"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server; } >&2
  command -v etcd >/dev/null || die "etcd-server installed but no etcd on PATH"
}

start_member() {
  local m="$1" state=new
  if [ -n "$(member_pid "$m")" ]; then return 0; fi
  # With a data dir, etcd ignores --initial-cluster-state and rejoins as the member it was.
  [ -d "$DIR/m$m/member" ] && state=existing
  log "starting member m$m (client $(client_url "$m"), peer $(peer_url "$m"), $state)"
  # setsid: the member outlives the shell that started it and is not in a test runner's process group.
  # Every inherited descriptor above stderr is closed first: a member started under `flock LOCK cmd`
  # (the e2e lock, the start lock) would otherwise hold that lock for as long as it runs.
  (
    for fd in /proc/self/fd/*; do
      n="${fd##*/}"
      [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null
    done
    exec setsid etcd \
      --name "m$m" \
      --data-dir "$DIR/m$m" \
      --listen-client-urls "$(client_url "$m")" \
      --advertise-client-urls "$(client_url "$m")" \
      --listen-peer-urls "$(peer_url "$m")" \
      --initial-advertise-peer-urls "$(peer_url "$m")" \
      --initial-cluster "$(initial_cluster)" \
      --initial-cluster-token "$TOKEN" \
      --initial-cluster-state "$state" \
      --log-outputs stderr
  ) >>"$DIR/m$m.log" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$DIR/m$m.pid"
}

wait_healthy() {
  local deadline=$((SECONDS + TIMEOUT_S)) m all
  while [ $SECONDS -lt $deadline ]; do
    all=1
    for m in "${MEMBERS[@]}"; do member_healthy "$m" || { all=0; break; }; done
    [ $all -eq 1 ] && return 0
    sleep 0.2
  done
  for m in "${MEMBERS[@]}"; do
    member_healthy "$m" || { log "member m$m is not healthy; last log lines:"; tail -n 5 "$DIR/m$m.log" >&2 || true; }
  done
  return 1
}

case "$VERB" in
  start)
    ensure_etcd
    mkdir -p "$DIR"
    exec 9>"$DIR/lock"
    flock -w "$TIMEOUT_S" 9 || die "another etcd-cluster.sh holds $DIR/lock"
    for m in "${MEMBERS[@]}"; do start_member "$m"; done
    wait_healthy || die "the cluster did not become healthy within ${TIMEOUT_S} s (logs in $DIR)"
    log "healthy: $(endpoints)"
    print_env
    ;;
  env) print_env ;;
  status)
    rc=0
    for m in "${MEMBERS[@]}"; do
      if member_healthy "$m"; then log "m$m $(client_url "$m"): healthy"; else log "m$m $(client_url "$m"): not healthy"; rc=1; fi
    done
    exit $rc
    ;;
  kill)
    m="${2:-}"
    [[ "$m" =~ ^[123]$ ]] || die "usage: $0 kill 1|2|3"
    pid="$(member_pid "$m" || true)"
    [ -n "$pid" ] || { log "member m$m is not running"; exit 0; }
    kill -KILL "$pid"
    while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.05; done
    log "killed member m$m (pid $pid)"
    ;;
  leader)
    # Each member's status names the leader's id and its own; the leader is the one where they agree.
    for m in "${MEMBERS[@]}"; do
      out="$(curl -fsS --max-time 2 -X POST -d '{}' "$(client_url "$m")/v3/maintenance/status" 2>/dev/null)" || continue
      id="$(sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p' <<<"$out")"
      lead="$(sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p' <<<"$out")"
      if [ -n "$id" ] && [ "$id" = "$lead" ]; then printf '%s\n' "$m"; exit 0; fi
    done
    die "no member answers as the leader"
    ;;
  stop)
    for m in "${MEMBERS[@]}"; do
      pid="$(member_pid "$m" || true)"
      [ -n "$pid" ] || continue
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
      if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      log "stopped member m$m (pid $pid)"
    done
    rm -rf "$DIR"
    ;;
  *) die "unknown command '$VERB' (start, env, status, kill N, leader, stop)" ;;
esac
