#!/usr/bin/env bash
# Local Ray cluster for graphdex's distributed ingestion: a head node and one or more worker nodes, each its own raylet
# on this machine, run as background `ray start --block` processes that this script tracks by pid. Run `scripts/ray.sh --help`.
set -euo pipefail
GRAPHDEX_SCRIPT=ray.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

usage() {
    cat <<EOF
Usage: scripts/ray.sh start|stop|restart|status|logs [N]|--help

Runs a local Ray cluster for graphdex on 127.0.0.1: a head node and GRAPHDEX_RAY_WORKERS worker nodes, each a
separate raylet with its own CPUs and temp dir, as background processes of this machine. The nodes run the graphdex
of this checkout ($REPO_ROOT is put first on their PYTHONPATH) with the Ray of \$RAY. Works from any directory.

Commands:
  start     Start the head, then the workers, and wait (up to GRAPHDEX_RAY_START_TIMEOUT s) until every node has
            joined; then print the address to use. A no-op (exit 0) when the cluster is already running.
  stop      Stop the workers, then the head: SIGTERM to each node's \`ray start --block\` process, which stops its
            node's Ray processes; what is left of a node after GRAPHDEX_RAY_STOP_TIMEOUT s is killed by process
            group. Only this cluster's processes are touched (unlike \`ray stop\`, which ends every Ray process of
            the machine). A no-op when not running.
  restart   stop, then start (picks up changed settings).
  status    Exit 0 when every node's process runs and the head accepts connections, 3 otherwise.
  logs [N]  Print the last N (default 40) lines of each node's log, and where Ray's own logs are.

Environment (a GRAPHDEX_RAY_* line in the repository's .env is used when the variable is not set):
  GRAPHDEX_RAY_PORT             head (GCS) port: GRAPHDEX_RAY_ADDRESS=127.0.0.1:<port>  (default: 6379)
  GRAPHDEX_RAY_CLIENT_PORT      Ray client port: ray://127.0.0.1:<port>                 (default: 10001)
  GRAPHDEX_RAY_HEAD_CPUS        CPUs the head offers to actors (0: the head runs none)  (default: 1)
  GRAPHDEX_RAY_WORKERS          worker nodes                                           (default: 1)
  GRAPHDEX_RAY_WORKER_CPUS      CPUs each worker node offers                           (default: 1)
  GRAPHDEX_RAY_OBJECT_STORE_MB  object store of each node, MiB                         (default: 256)
  GRAPHDEX_RAY_DIR              pid files, logs and the nodes' Ray temp dirs           (default: \${TMPDIR:-/tmp}/graphdex-ray-<port>)
  GRAPHDEX_RAY_START_TIMEOUT    seconds to wait for the nodes                          (default: 120)
  GRAPHDEX_RAY_STOP_TIMEOUT     seconds to wait before killing a node                  (default: 30)
  RAY                           the ray command      (default: <repo>/.venv/bin/ray if present, else ray on PATH)
  PYTHON                        interpreter with ray, for the join check  (default: the python beside \$RAY)

Files: <dir>/head.pid, <dir>/worker-N.pid (the \`ray start\` processes), <dir>/head.log, <dir>/worker-N.log (their
output), <dir>/head/ and <dir>/worker-N/ (Ray's temp dirs: session logs, sockets; older sessions are removed on start).
EOF
}

# --- settings -------------------------------------------------------------------------------------------------------

# GRAPHDEX_RAY_* values from the repository's .env unless set in the environment.
load_dotenv "$REPO_ROOT/.env" GRAPHDEX_RAY_

HOST="127.0.0.1"
PORT="${GRAPHDEX_RAY_PORT:-6379}"
CLIENT_PORT="${GRAPHDEX_RAY_CLIENT_PORT:-10001}"
HEAD_CPUS="${GRAPHDEX_RAY_HEAD_CPUS:-1}"
WORKERS="${GRAPHDEX_RAY_WORKERS:-1}"
WORKER_CPUS="${GRAPHDEX_RAY_WORKER_CPUS:-1}"
OBJECT_STORE_MB="${GRAPHDEX_RAY_OBJECT_STORE_MB:-256}"
START_TIMEOUT="${GRAPHDEX_RAY_START_TIMEOUT:-120}"
STOP_TIMEOUT="${GRAPHDEX_RAY_STOP_TIMEOUT:-30}"
require_numbers GRAPHDEX_RAY_ "a whole number" PORT CLIENT_PORT HEAD_CPUS WORKERS WORKER_CPUS OBJECT_STORE_MB START_TIMEOUT STOP_TIMEOUT
((WORKERS >= 1)) || die "GRAPHDEX_RAY_WORKERS must be at least 1 (the point is a worker node beside the head)"
((OBJECT_STORE_MB >= 80)) || die "GRAPHDEX_RAY_OBJECT_STORE_MB must be at least 80 (Ray's minimum is 75 MiB)"
[[ "$PORT" != "$CLIENT_PORT" ]] || die "GRAPHDEX_RAY_PORT and GRAPHDEX_RAY_CLIENT_PORT are both $PORT"
# Short by default: Ray's socket paths live under it and must stay below the 107 characters a Unix socket allows.
STATE_DIR="${GRAPHDEX_RAY_DIR:-${TMPDIR:-/tmp}/graphdex-ray-$PORT}"
STATE_DIR="$(in_dir "$PWD" "$STATE_DIR")"
((${#STATE_DIR} <= 40)) || warn "GRAPHDEX_RAY_DIR ($STATE_DIR) is long: Ray's socket paths under it may exceed 107 characters"

if [[ -z "${RAY:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/ray" ]]; then RAY="$REPO_ROOT/.venv/bin/ray"; else RAY="ray"; fi
fi
if [[ -z "${PYTHON:-}" ]]; then
    _ray_path="$(command -v "$RAY" || true)"
    if [[ -n "$_ray_path" && -x "$(dirname "$_ray_path")/python" ]]; then PYTHON="$(dirname "$_ray_path")/python"; else PYTHON="python3"; fi
fi
START_MARK="Ray runtime started"

# --- helpers --------------------------------------------------------------------------------------------------------

nodes() { echo head; local i; for ((i = 1; i <= WORKERS; i++)); do echo "worker-$i"; done; }
pid_file() { echo "$STATE_DIR/$1.pid"; }
log_file() { echo "$STATE_DIR/$1.log"; }

node_pid() { live_pid "$(pid_file "$1")" "ray start"; }  # PID of a node's `ray start` process if it runs
show_log() { log_tail "$(log_file "$1")" "${2:-40}"; }  # show_log NODE [N]

# Start one node in the background (spawn): the launcher becomes `ray start --block`, which stays up as long as its
# node and, on SIGTERM, stops the node's processes. Ray makes it the leader of a process group that holds them all.
launch() {
    local node="$1"; shift
    rm -rf "${STATE_DIR:?}/$node"/session_*  # sessions of earlier runs: logs and dead sockets
    mkdir -p "$STATE_DIR/$node"
    PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" RAY_USAGE_STATS_ENABLED=0 \
        spawn "$STATE_DIR" "$(pid_file "$node")" "$(log_file "$node")" "$RAY" start --block --disable-usage-stats \
        --node-ip-address "$HOST" --temp-dir "$STATE_DIR/$node" --num-gpus 0 \
        --object-store-memory "$((OBJECT_STORE_MB * 1024 * 1024))" "$@" \
        || { show_log "$node"; die "the $node process did not start"; }
}

# wait_node NODE DEADLINE INTERVAL LATE CHECK...: run CHECK every INTERVAL s until it succeeds; when the node exits
# first or DEADLINE (in $SECONDS) passes, show its log and die (LATE is the message for the latter).
wait_node() {
    local node="$1" deadline="$2" interval="$3" late="$4" rc=0
    shift 4
    wait_until "$(node_pid "$node")" "$(pid_file "$node")" "$deadline" "$interval" "" "$@" || rc=$?
    ((rc == 0)) && return 0
    show_log "$node"
    ((rc == 2)) || die "the $node node exited during startup (see its log above)"
    die "$late"
}

has_started() { grep -q "$START_MARK" "$(log_file "$1")" 2>/dev/null; }

# Wait until a node's `ray start` says its runtime is up. $1: node, $2: deadline (in $SECONDS).
wait_started() {
    wait_node "$1" "$2" 0.5 "the $1 node did not start within $START_TIMEOUT s (GRAPHDEX_RAY_START_TIMEOUT); 'scripts/ray.sh stop' cleans up" has_started "$1"
}

# Wait until the head counts every node as alive (a worker's runtime is up before the head has heard of it).
wait_joined() {
    local deadline="$1" want=$((WORKERS + 1)) out=""
    while :; do
        out="$(GRAPHDEX_RAY_CHECK_ADDRESS="$HOST:$PORT" "$PYTHON" - 2>&1 <<'PY' || true
import logging, os
import ray
ray.init(address=os.environ["GRAPHDEX_RAY_CHECK_ADDRESS"], logging_level=logging.ERROR, log_to_driver=False)
print("alive", sum(1 for node in ray.nodes() if node["Alive"]), "cpus", ray.cluster_resources().get("CPU", 0))
PY
)"
        if [[ "$out" =~ alive\ ([0-9]+)\ cpus\ ([0-9.]+) ]] && ((BASH_REMATCH[1] >= want)); then
            CLUSTER_CPUS="${BASH_REMATCH[2]}"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            printf '%s\n' "$out" | tail -n 20 >&2
            die "the cluster did not count $want live nodes within $START_TIMEOUT s (GRAPHDEX_RAY_START_TIMEOUT); 'scripts/ray.sh logs' shows why"
        fi
        sleep 1
    done
}

print_ready() {
    say "Ray cluster running: head (pid $(node_pid head)) and $WORKERS worker node(s), ${CLUSTER_CPUS:-?} CPUs"
    cat <<EOF
  graphdex: GRAPHDEX_RAY_ADDRESS=$HOST:$PORT   (from outside the cluster: ray://$HOST:$CLIENT_PORT)
  Logs:     $STATE_DIR/*.log, Ray's own under $STATE_DIR/<node>/session_latest/logs
EOF
}

# Stop one node: SIGTERM to its `ray start --block`, which stops its processes; then kill what is left of its group.
stop_node() {
    local node="$1" pid
    pid="$(node_pid "$node")"
    [[ -n "$pid" ]] || return 0
    say "stopping the $node node (pid $pid)..."
    stop_pid "$pid" "$(pid_file "$node")" "$STOP_TIMEOUT" 0.2 0 \
        "the $node node did not stop within $STOP_TIMEOUT s (GRAPHDEX_RAY_STOP_TIMEOUT); killing it"
    # Its processes share its process group (Ray makes `ray start` the leader): anything that outlived it goes now.
    kill -KILL -- "-$pid" 2>/dev/null || true
}

# --- commands -------------------------------------------------------------------------------------------------------

cmd_start() {
    take_lock "$STATE_DIR/ray.lock" 600 "$STATE_DIR"  # one start/stop at a time per cluster
    command -v "$RAY" >/dev/null 2>&1 || die "the ray command ('$RAY') is not installed: pip install 'graphdex[ray]' (or set RAY)"
    local running=() node
    for node in $(nodes); do [[ -z "$(node_pid "$node")" ]] || running+=("$node"); done
    if ((${#running[@]} == WORKERS + 1)); then
        say "already running"
        wait_joined $((SECONDS + START_TIMEOUT))
        print_ready
        return 0
    fi
    if ((${#running[@]})); then
        warn "only part of the cluster runs (${running[*]}): restarting it"
        for node in $(nodes | tac); do stop_node "$node"; done
    fi
    local port
    for port in "$PORT" "$CLIENT_PORT"; do
        port_open "$HOST" "$port" && die "port $HOST:$port is already in use by another process (not this cluster); stop it or set GRAPHDEX_RAY_PORT / GRAPHDEX_RAY_CLIENT_PORT"
    done
    local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT)) i
    say "starting the head node ($HEAD_CPUS CPUs, port $PORT) with $RAY"
    launch head --head --port "$PORT" --ray-client-server-port "$CLIENT_PORT" --num-cpus "$HEAD_CPUS" --include-dashboard false
    # the workers can start as soon as the head's GCS listens: they wait for the rest of the head themselves
    wait_node head "$deadline" 0.3 "the head did not listen on $HOST:$PORT within $START_TIMEOUT s (GRAPHDEX_RAY_START_TIMEOUT)" \
        port_open "$HOST" "$PORT"
    for ((i = 1; i <= WORKERS; i++)); do
        say "starting worker node $i ($WORKER_CPUS CPUs)"
        launch "worker-$i" --address "$HOST:$PORT" --num-cpus "$WORKER_CPUS"
    done
    wait_started head "$deadline"
    for ((i = 1; i <= WORKERS; i++)); do wait_started "worker-$i" "$deadline"; done
    wait_joined "$deadline"
    say "ready in $((SECONDS - t0)) s"
    print_ready
}

cmd_stop() {
    [[ -d "$STATE_DIR" ]] || { say "not running (no $STATE_DIR)"; return 0; }
    take_lock "$STATE_DIR/ray.lock" 600 "$STATE_DIR"  # one start/stop at a time per cluster
    local node found=""
    # workers first, then the head; pid files of earlier, larger clusters count too
    for node in $(cd "$STATE_DIR" && ls -- worker-*.pid 2>/dev/null | sed 's/\.pid$//' | sort -r) head; do
        [[ -z "$(node_pid "$node")" ]] || found=yes
        stop_node "$node"
    done
    if [[ -n "$found" ]]; then say "stopped"; else say "not running"; fi
}

cmd_status() {
    local node pid missing=()
    for node in $(nodes); do
        pid="$(node_pid "$node")"
        if [[ -n "$pid" ]]; then say "$node: running (pid $pid)"; else missing+=("$node"); fi
    done
    if ((${#missing[@]})); then
        say "not running: ${missing[*]} (cluster dir $STATE_DIR)"
        return 3
    fi
    if ! port_open "$HOST" "$PORT"; then
        say "the processes run but the head does not accept connections on $HOST:$PORT (starting up or failing; see 'scripts/ray.sh logs')"
        return 3
    fi
    say "running: GRAPHDEX_RAY_ADDRESS=$HOST:$PORT"
}

cmd_logs() {
    local n="${1:-40}" node
    check_lines "$n"
    [[ -d "$STATE_DIR" ]] || die "no cluster dir $STATE_DIR yet"
    for node in $(nodes); do
        if [[ -s "$(log_file "$node")" ]]; then
            printf -- '---- %s: last %s lines of %s ----\n' "$node" "$n" "$(log_file "$node")"
            tail -n "$n" "$(log_file "$node")"
        fi
        printf -- '---- %s: Ray logs (raylet.out, worker-*.err, python-core-worker-*.log) in %s ----\n' "$node" "$STATE_DIR/$node/session_latest/logs"
    done
}

main "$@"
