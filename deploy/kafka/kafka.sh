#!/usr/bin/env bash
# Local Apache Kafka broker (KRaft, one combined broker/controller node) on
# 127.0.0.1, run from jars that Maven resolves. Used by `make kafka-up`,
# `make kafka-down`, the demo and the test suite.
#
#   deploy/kafka/kafka.sh up       resolve jars, format storage, start, wait until it answers
#   deploy/kafka/kafka.sh down     stop exactly the broker this script started
#   deploy/kafka/kafka.sh status   say whether it runs
#
# Settings (environment):
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port (default KAFKA_PORT + 1)
#   DOCMILL_CACHE_DIR      where jars and broker state live (default <repo>/.cache)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx768m)
#   KAFKA_EXTRA_LISTENERS  more listeners, e.g. SASL_SSL://127.0.0.1:19094,SSL://127.0.0.1:19095
#                          (each listener's name is its security protocol)
#   KAFKA_EXTRA_PROPERTIES a file appended to server.properties (TLS files, SASL settings)
#   KAFKA_FORMAT_ARGS      extra StorageTool format arguments, e.g. --add-scram 'SCRAM-SHA-512=[...]'
#                          (applied when the storage is formatted, i.e. on a fresh run folder)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 120)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
cache=${DOCMILL_CACHE_DIR:-$repo/.cache}
jars="$cache/kafka-jars-$kafka_version"
run="$cache/kafka-run-$port"
pidfile="$run/broker.pid"
heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
timeout=${KAFKA_START_TIMEOUT:-120}

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*"; }

answers() {  # true when something accepts TCP connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

our_pid() {  # prints the pid of the broker this script started, if it is alive
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # The pid must still be our JVM running our config, not a recycled pid.
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$run/server.properties" || return 1
  echo "$pid"
}

require_java() {
  command -v java >/dev/null || die "Java 17+ is required but 'java' is not on PATH (Debian: apt-get install openjdk-17-jre-headless)"
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${major:-0}" -ge 17 ] || die "Java 17+ is required; found Java ${major:-unknown}"
}

resolve_jars() {
  [ -f "$jars/.complete" ] && return 0
  command -v mvn >/dev/null || die "Maven is required to fetch the Kafka jars but 'mvn' is not on PATH (Debian: apt-get install maven)"
  say "resolving Apache Kafka $kafka_version jars with Maven into $jars"
  rm -rf "$jars"
  mkdir -p "$jars"
  # The plugin version is pinned: Maven 3.8 would otherwise pick an old one.
  mvn -B -q -f "$here/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars" >"$cache/mvn-kafka.log" 2>&1 \
    || { tail -20 "$cache/mvn-kafka.log" >&2; die "Maven could not resolve the Kafka jars (log: $cache/mvn-kafka.log)"; }
  touch "$jars/.complete"
}

write_config() {
  mkdir -p "$run/data"
  local listeners="PLAINTEXT://127.0.0.1:$port" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" extra
  local extras=${KAFKA_EXTRA_LISTENERS:-}
  for extra in ${extras//,/ }; do
    listeners="$listeners,$extra"
    protocols="$protocols,${extra%%://*}:${extra%%://*}"
  done
  cat >"$run/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$run/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.cleaner.dedupe.buffer.size=2097152
auto.create.topics.enable=false
EOF
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    [ -f "$KAFKA_EXTRA_PROPERTIES" ] || die "KAFKA_EXTRA_PROPERTIES names a missing file: $KAFKA_EXTRA_PROPERTIES"
    cat "$KAFKA_EXTRA_PROPERTIES" >>"$run/server.properties"
  fi
}

format_storage() {
  [ -f "$run/data/meta.properties" ] && return 0
  local cluster_id
  cluster_id=$(java -cp "$jars/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  # shellcheck disable=SC2086
  java -Dlog4j2.configurationFile="$here/log4j2.yaml" -Dkafka.logs.dir="$run" -cp "$jars/*" \
    kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$run/server.properties" \
    ${KAFKA_FORMAT_ARGS:-} >"$run/format.log" 2>&1 || { cat "$run/format.log" >&2; die "formatting KRaft storage failed"; }
}

up() {
  if pid=$(our_pid) && answers "$port"; then
    say "broker already running on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  require_java
  answers "$port" && die "port $port is already taken by another process; set KAFKA_PORT to use another"
  mkdir -p "$cache"
  resolve_jars
  write_config
  format_storage
  # setsid: the broker outlives the shell that started it and ignores its Ctrl+C.
  # shellcheck disable=SC2086
  setsid java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2.yaml" -Dkafka.logs.dir="$run" \
    -cp "$jars/*" kafka.Kafka "$run/server.properties" \
    >"$run/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local waited=0
  until answers "$port"; do
    if ! our_pid >/dev/null; then
      tail -30 "$run/broker.log" "$run/stdout.log" >&2 2>/dev/null || true
      die "broker exited during startup (logs in $run)"
    fi
    [ "$waited" -ge $((timeout * 5)) ] && { down; die "broker did not answer on 127.0.0.1:$port within ${timeout}s (logs in $run)"; }
    sleep 0.2
    waited=$((waited + 1))
  done
  say "broker $kafka_version ready on 127.0.0.1:$port (pid $(cat "$pidfile"), logs in $run)"
}

down() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$pidfile"
    say "no broker started by this script is running on port $port"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "broker did not stop within 30s; killing it"
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  say "broker on port $port stopped"
}

status() {
  if pid=$(our_pid) && answers "$port"; then
    say "running on 127.0.0.1:$port (pid $pid)"
  else
    say "not running on port $port"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) down; rm -rf "$run"; say "state of the broker on port $port removed" ;;
  *) echo "usage: $0 up|down|status|reset" >&2; exit 2 ;;
esac
