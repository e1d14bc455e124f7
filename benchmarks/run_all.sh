#!/usr/bin/env bash
# Run every benchmark with the settings recorded in BENCHMARKS.md, one after the
# other (they measure CPU per core; running them side by side would distort each
# other). Full run: about 45 minutes on a 2-core machine. Output goes to the
# terminal and to bench-out/<name>.txt.
#
#   make bench                       # everything
#   bash benchmarks/run_all.sh collector redaction   # some areas only
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA=${TRACEWORK_SHARED_DATA:-../shared/data}
mkdir -p bench-out

run() {  # run NAME COMMAND...: print the command, run it, keep its output
    local name=$1; shift
    echo "=== $name: $*"
    "$@" 2>&1 | tee "bench-out/$name.txt"
}

SELECTED="$*"
AREAS="agent collector redaction privacy builder governance"
for area in $SELECTED; do
    [[ " $AREAS " == *" $area "* ]] || { echo "unknown area '$area'; choose from: $AREAS" >&2; exit 2; }
done
want() { [ -z "$SELECTED" ] || [[ " $SELECTED " == *" $1 "* ]]; }

if want agent; then
    run agent-capture $PY benchmarks/agent/bench_capture.py
    run agent-cpu $PY benchmarks/agent/bench_agent_cpu.py
fi
if want collector; then
    run collector-ingest $PY benchmarks/collector/bench_ingest.py
fi
if want redaction; then
    run redaction $PY benchmarks/redaction/bench_presidio_synth.py
fi
if want privacy; then
    run privacy-stages $PY benchmarks/privacy/bench_stage_throughput.py
    run privacy-anonymizers $PY benchmarks/privacy/bench_anonymizers.py \
        --aalto "$DATA/aalto-keystrokes" --balabit "$DATA/balabit-mouse" --out bench-out/privacy
fi
if want builder; then
    run builder-build $PY benchmarks/builder/bench_build.py --events 10000000 --baseline-events 500000
    run builder-aalto-replay $PY benchmarks/builder/aalto_replay.py --data "$DATA/aalto-keystrokes"
fi
if want governance; then
    run governance $PY benchmarks/governance/bench_governance.py
fi
