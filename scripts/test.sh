#!/usr/bin/env bash
# The whole test suite as two pytest processes side by side: the tests that reach the Neo4j server in one, all the
# others in the other. Why: a single process keeps about one of this machine's two cores busy (much of a Neo4j
# test is spent waiting on the server, the two-minute outage test on the clock), so the halves overlap well and CI
# finishes in roughly the time of the longer half. The halves share no server: only the first talks to Neo4j, and
# the Ray cluster and the local model server are used by the second alone (a test in both would start them twice;
# the check below refuses that split). Each half has its own temporary directory. The Neo4j half's output follows
# the other's; the exit status is non-zero when either half fails.
#
# Usage: scripts/test.sh [extra pytest arguments, given to both halves]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NEO4J_HALF="neo4j"
OTHER_HALF="not neo4j"

shared=$("$PY" -m pytest --collect-only -q -m "($NEO4J_HALF) and (ray or local_llm)" "$@" 2>/dev/null | grep -c "::" || true)
if [ "$shared" != "0" ]; then
    echo "scripts/test.sh: $shared Neo4j tests also need Ray or the local model server; both halves would start them." >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/graphdex-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/neo4j" "$work/other"

"$PY" -m pytest -m "$NEO4J_HALF" --basetemp="$work/neo4j" --durations=30 "$@" >"$work/neo4j.log" 2>&1 &
neo4j_pid=$!
"$PY" -m pytest -m "$OTHER_HALF" --basetemp="$work/other" --durations=30 "$@"
other_status=$?
wait "$neo4j_pid"
neo4j_status=$?

echo
echo "================================ the Neo4j half ================================"
cat "$work/neo4j.log"
echo
echo "scripts/test.sh: tests without Neo4j exit $other_status, tests on Neo4j exit $neo4j_status"
[ "$other_status" = 0 ] && [ "$neo4j_status" = 0 ]
