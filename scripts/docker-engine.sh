#!/usr/bin/env bash
# A Docker engine for the containers leg, and nothing left behind:
#
#   scripts/docker-engine.sh start   # an engine that answers: the running one, else dockerd
#                                    # started here (Debian's docker.io installed if missing)
#   scripts/docker-engine.sh stop    # stops only a dockerd this script started (and with it
#                                    # its containers); an engine that was running stays
#
# Needs root. The dockerd started here logs to .containers/dockerd.log.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=.containers
PIDFILE="$STATE/dockerd.pid"
log() { printf 'docker-engine: %s\n' "$*" >&2; }

answers() { timeout 5 docker info >/dev/null 2>&1; }

install_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [[ ${#missing[@]} -gt 0 ]] || return 0
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q "${missing[@]}" >/dev/null
}

start() {
  install_missing
  if answers; then
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "the dockerd this script started answers (stop stops it)"
    else
      log "a Docker engine answers already: using it (and leaving it running)"
    fi
    return
  fi
  mkdir -p "$STATE"
  log "starting dockerd (log: $STATE/dockerd.log)"
  setsid dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$PIDFILE"
  local waited=0
  until answers; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      rm -f "$PIDFILE"
      log "dockerd exited; its last lines:"
      tail -20 "$STATE/dockerd.log" >&2
      return 1
    fi
    if ((waited >= 60)); then
      log "dockerd does not answer after 60 s"
      stop
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd answers (pid $(cat "$PIDFILE"), ${waited} s)"
}

stop() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid
  pid="$(cat "$PIDFILE")"
  rm -f "$PIDFILE"
  kill -0 "$pid" 2>/dev/null || return 0
  # Our containers first (the engine would stop them too, but more slowly, one by one).
  local containers
  containers="$(docker ps -q 2>/dev/null || true)"
  if [[ -n "$containers" ]]; then
    # shellcheck disable=SC2086
    docker rm -f $containers >/dev/null 2>&1 || true
  fi
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 60)); then
      log "dockerd still running after 60 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
