#!/usr/bin/env bash
# Starts (or reuses) a real `systemd --user` manager on a machine where systemd is not PID 1, so the
# e2e tests and CI can drive real units with `systemctl --user` (template units included).
#
#   eval "$(scripts/user-manager.sh)"        # start or reuse; prints the env to export on stdout
#   scripts/user-manager.sh env              # print the env only (no start)
#   scripts/user-manager.sh status           # exit 0 when a manager answers, 1 otherwise
#   scripts/user-manager.sh stop             # stop only what this script started (pidfile)
#
# Environment: XDG_RUNTIME_DIR (default /run/user/$UID), JORM_USER_MANAGER_TIMEOUT_S (default 30),
# JORM_USER_MANAGER_OWN_DBUS=1 (start our own dbus-daemon even where dbus-user-session would).
# Logs go to stderr and $XDG_RUNTIME_DIR/jorm-user-manager.log; stdout carries only the exports.
#
# Why each step: systemd refuses to act as a user manager's "booted" host unless /run/systemd/system
# exists; D-Bus clients find the session bus at $XDG_RUNTIME_DIR/bus (from dbus-user-session's
# dbus.socket in the manager, else a dbus-daemon started here first); the manager is started with
# setsid so it outlives the shell that started it and is not in the caller's process group (a test
# runner's Ctrl-C must not take it down).
set -euo pipefail

VERB="${1:-start}"
UID_NOW="$(id -u)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$UID_NOW}"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
TIMEOUT_S="${JORM_USER_MANAGER_TIMEOUT_S:-30}"
PIDFILE="$XDG_RUNTIME_DIR/jorm-user-manager.pids"
LOCKFILE="$XDG_RUNTIME_DIR/jorm-user-manager.lock"
LOGFILE="$XDG_RUNTIME_DIR/jorm-user-manager.log"
SYSTEMD_BIN="/lib/systemd/systemd"
[ -x "$SYSTEMD_BIN" ] || SYSTEMD_BIN="/usr/lib/systemd/systemd"

log() { printf 'user-manager: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

print_env() {
  printf 'export XDG_RUNTIME_DIR=%q\n' "$XDG_RUNTIME_DIR"
  printf 'export DBUS_SESSION_BUS_ADDRESS=%q\n' "$DBUS_SESSION_BUS_ADDRESS"
}

# "running" and "degraded" (some unit failed, e.g. a test's) both mean the manager serves requests.
manager_state() { timeout 5 systemctl --user is-system-running 2>/dev/null || true; }
manager_answers() {
  case "$(manager_state)" in running | degraded | starting | initializing) return 0 ;; *) return 1 ;; esac
}
bus_answers() {
  [ -S "$XDG_RUNTIME_DIR/bus" ] || return 1
  timeout 5 dbus-send --session --dest=org.freedesktop.DBus --type=method_call --print-reply \
    /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1
}

user_manager_has_bus() {
  [ "${JORM_USER_MANAGER_OWN_DBUS:-0}" != 1 ] || return 1
  [ -e /usr/lib/systemd/user/dbus.socket ] || [ -e /lib/systemd/user/dbus.socket ]
}

# A pid from our pidfile is ours only while it still runs the program we started (pids get reused).
pid_is() {
  local pid="$1" want="$2"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$want"
}

ensure_packages() {
  local missing=()
  command -v dbus-daemon >/dev/null || missing+=(dbus)
  command -v dbus-send >/dev/null || missing+=(dbus)
  { [ -x "$SYSTEMD_BIN" ] && command -v systemctl >/dev/null; } || missing+=(systemd)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$UID_NOW" -eq 0 ] || die "missing packages (${missing[*]}) and not root to install them"
  log "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  SYSTEMD_BIN="/lib/systemd/systemd"
  [ -x "$SYSTEMD_BIN" ] || SYSTEMD_BIN="/usr/lib/systemd/systemd"
}

wait_for_manager() {
  local deadline=$((SECONDS + TIMEOUT_S)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state="$(manager_state)"
    case "$state" in running | degraded) return 0 ;; esac
    sleep 0.1
  done
  log "manager did not come up within ${TIMEOUT_S}s (last state: '${state:-no answer}'); log tail:"
  tail -n 20 "$LOGFILE" >&2 2>/dev/null || true
  return 1
}

start() {
  if manager_answers; then
    wait_for_manager || die "a manager answers at $XDG_RUNTIME_DIR but never reaches running"
    log "reusing the user manager at $XDG_RUNTIME_DIR ($(manager_state))"
    print_env
    return 0
  fi
  ensure_packages
  [ "$UID_NOW" -eq 0 ] && mkdir -p /run/systemd/system
  [ -d /run/systemd/system ] || die "/run/systemd/system is missing and only root can create it"

  local dbus_pid="" systemd_pid=""
  if bus_answers; then
    log "reusing the session bus at $XDG_RUNTIME_DIR/bus"
  elif user_manager_has_bus; then
    # dbus-user-session: the manager's own dbus.socket binds $XDG_RUNTIME_DIR/bus (a bus we started
    # would only lose its socket to it).
    rm -f "$XDG_RUNTIME_DIR/bus"
    log "the user manager brings its own session bus (dbus.socket)"
  else
    rm -f "$XDG_RUNTIME_DIR/bus"
    dbus_pid="$(dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --print-pid \
      --nopidfile </dev/null 2>>"$LOGFILE" 9>&- | head -n1)"
    [ -n "$dbus_pid" ] || die "dbus-daemon did not start (see $LOGFILE)"
    log "started dbus-daemon (pid $dbus_pid)"
  fi

  # Not inside `$( )`: the manager must not hold our stdout open, or `eval "$(...)"` would never end.
  # fd 9 (our lock) is closed for it, or the lock would live as long as the manager.
  setsid "$SYSTEMD_BIN" --user </dev/null >>"$LOGFILE" 2>&1 9>&- &
  systemd_pid=$!
  printf 'dbus %s\nsystemd %s\n' "$dbus_pid" "$systemd_pid" >"$PIDFILE"
  log "started systemd --user (pid $systemd_pid)"

  if ! wait_for_manager; then
    stop_started
    die "systemd --user did not become ready"
  fi
  log "user manager ready at $XDG_RUNTIME_DIR ($(manager_state))"
  print_env
}

# Ends what the pidfile names and nothing else: another helper's or CI's manager is left alone.
stop_started() {
  [ -f "$PIDFILE" ] || { log "nothing to stop: no $PIDFILE (this script started nothing here)"; return 0; }
  local dbus_pid systemd_pid
  dbus_pid="$(awk '$1=="dbus"{print $2}' "$PIDFILE")"
  systemd_pid="$(awk '$1=="systemd"{print $2}' "$PIDFILE")"
  # SIGTERM lets the manager stop its units (exit.target) before it exits.
  if pid_is "$systemd_pid" "systemd --user"; then
    kill -TERM "$systemd_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do pid_is "$systemd_pid" "systemd --user" || break; sleep 0.1; done
    pid_is "$systemd_pid" "systemd --user" && kill -KILL "$systemd_pid" 2>/dev/null || true
    log "stopped systemd --user (pid $systemd_pid)"
  fi
  if pid_is "$dbus_pid" "dbus-daemon"; then
    kill -TERM "$dbus_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_is "$dbus_pid" "dbus-daemon" || break; sleep 0.1; done
    rm -f "$XDG_RUNTIME_DIR/bus"
    log "stopped dbus-daemon (pid $dbus_pid)"
  fi
  rm -f "$PIDFILE"
}

mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

case "$VERB" in
  env) print_env ;;
  status)
    if manager_answers; then log "manager answers: $(manager_state)"; print_env; else log "no manager answers at $XDG_RUNTIME_DIR"; exit 1; fi
    ;;
  start | stop)
    # One starter at a time: parallel test files or helpers must not race two managers onto one bus.
    exec 9>"$LOCKFILE"
    flock -w "$TIMEOUT_S" 9 || die "another user-manager.sh holds $LOCKFILE"
    if [ "$VERB" = start ]; then start; else stop_started; fi
    ;;
  -h | --help | help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown verb '$VERB' (start | env | status | stop)" ;;
esac
