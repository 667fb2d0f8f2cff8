#!/usr/bin/env bash
# A scaled, monitored docmill on this machine, without a container engine:
# the local broker, the topics, N consumer replicas on distinct metrics ports,
# and a Prometheus scraping all of them with the shipped alert rules.
#
#   deploy/local/cluster.sh up      (make up REPLICAS=3)
#   deploy/local/cluster.sh down    (make down) stops exactly what `up` started
#
# Settings (environment): REPLICAS (3), METRICS_BASE_PORT (9400; replica i serves
# on base+i), PROMETHEUS_PORT (9090), SCRAPE_INTERVAL (5s), KAFKA_PORT (9092),
# LOCAL_STATE_DIR (<repo>/.cache/local). Every DOCMILL_* and ANTHROPIC_* variable
# is passed to the replicas as it is.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
replicas=${REPLICAS:-3}
base_port=${METRICS_BASE_PORT:-9400}
prometheus_port=${PROMETHEUS_PORT:-9090}
scrape_interval=${SCRAPE_INTERVAL:-5s}
kafka_port=${KAFKA_PORT:-9092}
state=${LOCAL_STATE_DIR:-$repo/.cache/local}
docmill="$repo/.venv/bin/docmill"
kafka="$repo/deploy/kafka/kafka.sh"

die() { echo "cluster.sh: $*" >&2; exit 1; }

alive() {  # true when the pid in file $1 runs a command line containing $2
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

start() {  # start NAME MARKER CMD... : runs CMD in the background, logs and pid in the state folder
  local name=$1 marker=$2
  shift 2
  if alive "$state/$name.pid" "$marker"; then
    echo "cluster.sh: $name already running (pid $(cat "$state/$name.pid"))"
    return 0
  fi
  setsid "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

up() {
  [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || die "REPLICAS must be a positive number, not '$replicas'"
  [ -x "$docmill" ] || die "docmill is not installed: run 'make install' first"
  command -v prometheus >/dev/null || die "prometheus is missing: run deploy/install-prerequisites.sh"
  mkdir -p "$state"
  if ! KAFKA_PORT=$kafka_port "$kafka" status >/dev/null 2>&1; then
    KAFKA_PORT=$kafka_port "$kafka" up
    touch "$state/started-broker"
  fi
  export DOCMILL_BOOTSTRAP_SERVERS=${DOCMILL_BOOTSTRAP_SERVERS:-127.0.0.1:$kafka_port}
  "$docmill" topics ensure >/dev/null

  local targets="" i port
  for ((i = 0; i < replicas; i++)); do
    port=$((base_port + i))
    start "consumer-$i" "--consumer-id local-$i" \
      "$docmill" consume --consumer-id "local-$i" --metrics-host 127.0.0.1 --metrics-port "$port"
    targets="$targets\"127.0.0.1:$port\", "
  done
  cat >"$state/prometheus.yml" <<EOF
# Written by deploy/local/cluster.sh for $replicas local replicas.
global:
  scrape_interval: $scrape_interval
  evaluation_interval: $scrape_interval
rule_files:
  - $repo/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: docmill
    static_configs:
      - targets: [${targets%, }]
EOF
  start prometheus "$state/prometheus.yml" prometheus --config.file="$state/prometheus.yml" \
    --storage.tsdb.path="$state/prometheus-data" --web.listen-address="127.0.0.1:$prometheus_port"

  for ((i = 0; i < replicas; i++)); do
    wait_for "http://127.0.0.1:$((base_port + i))/healthz" "consumer-$i"
  done
  wait_for "http://127.0.0.1:$prometheus_port/-/ready" prometheus
  echo "cluster.sh: $replicas replica(s) consuming from $DOCMILL_BOOTSTRAP_SERVERS"
  for ((i = 0; i < replicas; i++)); do
    echo "  replica $i metrics  http://127.0.0.1:$((base_port + i))/metrics   (log $state/consumer-$i.log)"
  done
  echo "  prometheus         http://127.0.0.1:$prometheus_port"
}

wait_for() {  # wait_for URL NAME: until the URL answers, or the process has died
  local waited=0
  until "$repo/.venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; do
    alive "$state/$2.pid" "" || { tail -20 "$state/$2.log" >&2; die "$2 exited during start-up"; }
    [ "$waited" -ge 300 ] && die "$2 did not answer at $1 within 60 s (log $state/$2.log)"
    sleep 0.2
    waited=$((waited + 1))
  done
}

down() {
  local file name pid
  for file in "$state"/consumer-*.pid "$state"/prometheus.pid; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .pid)
    pid=$(cat "$file")
    if alive "$file" "$([ "$name" = prometheus ] && echo "$state/prometheus.yml" || echo "--consumer-id local-${name#consumer-}")"; then
      kill -TERM "$pid"  # consumers drain in-flight records and commit before exiting
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "cluster.sh: stopped $name"
    fi
    rm -f "$file"
  done
  if [ -f "$state/started-broker" ]; then
    KAFKA_PORT=$kafka_port "$kafka" down
    rm -f "$state/started-broker"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
