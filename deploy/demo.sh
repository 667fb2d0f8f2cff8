#!/usr/bin/env bash
# `make demo`: publish the bundled sample invoices, extract them with --drain,
# and print what was extracted. Uses Claude when ANTHROPIC_API_KEY is set,
# otherwise the zero-cost local backend.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bin=.venv/bin
bootstrap=127.0.0.1:${KAFKA_PORT:-9092}
export DOCMILL_BOOTSTRAP_SERVERS=$bootstrap

if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  echo "demo: ANTHROPIC_API_KEY is set: extracting with Claude (${DOCMILL_MODEL:-claude-haiku-5-5})"
  backend=claude
else
  echo "demo: ANTHROPIC_API_KEY is not set: extracting with the zero-cost local backend"
  backend=local
fi

$bin/docmill topics ensure
job="demo-$(date -u +%Y%m%dT%H%M%SZ)-$RANDOM"
$bin/docmill produce deploy/samples/invoices --job-id "$job"

mkdir -p .cache
log=.cache/demo-consumer.log
echo "demo: consuming with --drain (consumer log: $log)"
start=$(date +%s.%N)
$bin/docmill consume --drain --backend "$backend" --group-id docmill-demo \
  --allowed-roots "$repo/deploy/samples" --metrics-port 0 2>"$log"
end=$(date +%s.%N)
$bin/python deploy/demo_report.py --job-id "$job" --started "$start" --finished "$end"
