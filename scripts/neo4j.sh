#!/usr/bin/env bash
# Local Neo4j 5.26 Community server for graphdex, without Docker and without neo4j.com downloads.
# The server jars and the Neo4j Browser come from Maven Central (through Maven and scripts/neo4j/pom.xml), are cached
# once per version, and the server runs as a plain background JVM bound to 127.0.0.1. Run `scripts/neo4j.sh --help`.
set -euo pipefail
GRAPHDEX_SCRIPT=neo4j.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
POM="$SCRIPT_DIR/neo4j/pom.xml"
STYLE_FILE="$REPO_ROOT/docs/graphdex.grass"
ENTRY_POINT="org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL="org.neo4j.cli.AdminTool"
NEO4J_USER="neo4j"  # Community edition's built-in admin user; the only one set-initial-password can set.

usage() {
    cat <<EOF
Usage: scripts/neo4j.sh start|stop|restart|status|logs [N]|--help

Runs a local Neo4j ${NEO4J_VERSION} Community server for graphdex on 127.0.0.1, without Docker. The server and the
Neo4j Browser ${BROWSER_VERSION} are fetched from Maven Central with Maven on the first start (needs Java 17 or 21 and
\`mvn\`; about 140 MB, cached) and run as one background JVM. Works from any directory.

Commands:
  start     Fetch the jars if they are not cached yet, set the initial password of user 'neo4j' on a new data
            directory, start the server in the background and wait (up to GRAPHDEX_NEO4J_START_TIMEOUT s) until Bolt
            accepts connections and an authenticated query works; then print the URIs. A no-op (exit 0) when it is
            already running. On failure it exits non-zero and prints the end of the logs.
  stop      Graceful stop (SIGTERM; SIGKILL after GRAPHDEX_NEO4J_STOP_TIMEOUT s). A no-op when not running.
  restart   stop, then start (picks up changed settings).
  status    Exit 0 when the server is running and reachable, 3 otherwise.
  logs [N]  Print the last N (default 40) lines of the server log.

Environment (a GRAPHDEX_NEO4J_* line in the repository's .env is used when the variable is not set):
  GRAPHDEX_NEO4J_PASSWORD       password of user 'neo4j'            (default: graphdex-dev-password, min. 8 chars)
  GRAPHDEX_NEO4J_BOLT_PORT      Bolt port                           (default: 7687)
  GRAPHDEX_NEO4J_HTTP_PORT      HTTP port, Browser at /browser/     (default: 7474)
  GRAPHDEX_NEO4J_DATA           data directory: databases, conf/, logs/, run/  (default: <repo>/.neo4j-data;
                                a relative path is taken relative to the repository root)
  GRAPHDEX_NEO4J_HOME           cache of the server jars            (default: ~/.cache/graphdex/neo4j-<version>)
  GRAPHDEX_NEO4J_VERSION        Neo4j version (org.neo4j:neo4j)     (default: ${DEFAULT_NEO4J_VERSION})
  GRAPHDEX_NEO4J_BROWSER_VERSION  org.neo4j.client:neo4j-browser    (default: ${DEFAULT_BROWSER_VERSION})
  GRAPHDEX_NEO4J_HEAP_INITIAL   JVM heap at start                   (default: 512m)
  GRAPHDEX_NEO4J_HEAP_MAX       JVM heap maximum                    (default: 1g)
  GRAPHDEX_NEO4J_PAGECACHE      Neo4j page cache                    (default: 256m)
  GRAPHDEX_NEO4J_JAVA_OPTS      extra JVM options, space separated  (default: none)
  GRAPHDEX_NEO4J_START_TIMEOUT  seconds to wait for readiness       (default: 120)
  GRAPHDEX_NEO4J_STOP_TIMEOUT   seconds to wait before SIGKILL      (default: 60)
  JAVA / JAVA_HOME              Java to run the server with         (default: java on PATH)
  MVN                           Maven command                       (default: mvn)
  PYTHON                        interpreter used for the Bolt check when it has the neo4j driver
                                (default: <repo>/.venv/bin/python if present, else python3); otherwise the check
                                uses curl and the HTTP API.

Files: <data>/conf/neo4j.conf is rewritten on every start from the settings above; extra Neo4j settings go in
<data>/conf/neo4j.local.conf (appended verbatim). Logs: <data>/logs/neo4j.log (plus debug.log, and console.log for JVM
output). PID file: <data>/run/neo4j.pid.

The password is only applied when the data directory is created: to change it later, run
ALTER CURRENT USER SET PASSWORD FROM 'old' TO 'new' in the Browser, or delete the data directory (loses the data).
Use graphdex against it with: GRAPHDEX_STORE=neo4j (and GRAPHDEX_NEO4J_URI if you changed the Bolt port).
EOF
}

# --- settings -------------------------------------------------------------------------------------------------------

# Take GRAPHDEX_NEO4J_* values from the repository's .env (which graphdex itself reads) unless set in the environment,
# so the server and the app agree on the password.
load_dotenv "$REPO_ROOT/.env" GRAPHDEX_NEO4J_

DEFAULT_NEO4J_VERSION="5.26.30"    # newest 5.26 LTS on Maven Central; runs on Java 17 (2025.x needs Java 21)
DEFAULT_BROWSER_VERSION="5.24.0"   # newest neo4j-browser on Maven Central
NEO4J_VERSION="${GRAPHDEX_NEO4J_VERSION:-$DEFAULT_NEO4J_VERSION}"
BROWSER_VERSION="${GRAPHDEX_NEO4J_BROWSER_VERSION:-$DEFAULT_BROWSER_VERSION}"
CACHE_DIR="${GRAPHDEX_NEO4J_HOME:-${HOME:?HOME is not set}/.cache/graphdex/neo4j-$NEO4J_VERSION}"
DATA_DIR="${GRAPHDEX_NEO4J_DATA:-.neo4j-data}"
# Absolute and normalised (Neo4j rejects paths with ..): relative paths are taken relative to the repository root.
DATA_DIR="$(abs_path "$REPO_ROOT" "$DATA_DIR")"
CACHE_DIR="$(abs_path "$REPO_ROOT" "$CACHE_DIR")"
HOST="127.0.0.1"
BOLT_PORT="${GRAPHDEX_NEO4J_BOLT_PORT:-7687}"
HTTP_PORT="${GRAPHDEX_NEO4J_HTTP_PORT:-7474}"
PASSWORD="${GRAPHDEX_NEO4J_PASSWORD:-graphdex-dev-password}"
HEAP_INITIAL="${GRAPHDEX_NEO4J_HEAP_INITIAL:-512m}"
HEAP_MAX="${GRAPHDEX_NEO4J_HEAP_MAX:-1g}"
PAGECACHE="${GRAPHDEX_NEO4J_PAGECACHE:-256m}"
EXTRA_JAVA_OPTS="${GRAPHDEX_NEO4J_JAVA_OPTS:-}"
START_TIMEOUT="${GRAPHDEX_NEO4J_START_TIMEOUT:-120}"
STOP_TIMEOUT="${GRAPHDEX_NEO4J_STOP_TIMEOUT:-60}"
MVN="${MVN:-mvn}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi

LIB_DIR="$CACHE_DIR/lib"
STAMP_FILE="$CACHE_DIR/.complete"
STAMP="neo4j=$NEO4J_VERSION browser=$BROWSER_VERSION"
CONF_DIR="$DATA_DIR/conf"
LOG_DIR="$DATA_DIR/logs"
RUN_DIR="$DATA_DIR/run"
PID_FILE="$RUN_DIR/neo4j.pid"
LOG_FILE="$LOG_DIR/neo4j.log"
CONSOLE_LOG="$LOG_DIR/console.log"
PASSWORD_MARK="$DATA_DIR/.graphdex-password.sha256"  # hash of the password the data dir was initialised with

require_numbers GRAPHDEX_NEO4J_ "a number" BOLT_PORT HTTP_PORT START_TIMEOUT STOP_TIMEOUT
[[ "$BOLT_PORT" != "$HTTP_PORT" ]] || die "GRAPHDEX_NEO4J_BOLT_PORT and GRAPHDEX_NEO4J_HTTP_PORT are both $BOLT_PORT"

# --- helpers --------------------------------------------------------------------------------------------------------

server_pid() { live_pid "$PID_FILE" "$ENTRY_POINT"; }  # PID of our server (a Neo4j JVM) if it is running

HAVE_PY_DRIVER=""
have_py_driver() {
    if [[ -z "$HAVE_PY_DRIVER" ]]; then
        if "$PYTHON" -c 'import neo4j' >/dev/null 2>&1; then HAVE_PY_DRIVER=yes; else HAVE_PY_DRIVER=no; fi
    fi
    [[ "$HAVE_PY_DRIVER" == yes ]]
}

# Run `RETURN 1` as user neo4j. Exit status: 0 it worked, 2 the credentials were rejected, 1 not ready (yet).
# Uses the Python driver over Bolt when $PYTHON has it, else the HTTP API with curl. The reason is left in $CHECK_MSG.
CHECK_MSG=""
CHECK_VIA=""
auth_check() {
    local out rc code
    if have_py_driver; then
        CHECK_VIA="Bolt (Python driver, $PYTHON)"
        set +e
        out="$(NEO4J_CHECK_URI="bolt://$HOST:$BOLT_PORT" NEO4J_CHECK_USER="$NEO4J_USER" NEO4J_CHECK_PASSWORD="$PASSWORD" \
            "$PYTHON" - 2>&1 <<'PY'
import os, sys
import neo4j
from neo4j.exceptions import AuthError
auth = (os.environ["NEO4J_CHECK_USER"], os.environ["NEO4J_CHECK_PASSWORD"])
try:
    with neo4j.GraphDatabase.driver(os.environ["NEO4J_CHECK_URI"], auth=auth, connection_timeout=5,
                                    max_connection_pool_size=1) as driver:
        with driver.session(database="neo4j") as session:  # a plain session: no transaction retries
            assert session.run("RETURN 1 AS ok").single()["ok"] == 1
except AuthError as error:
    print(f"{type(error).__name__}: {error}")
    sys.exit(2)
except Exception as error:
    print(f"{type(error).__name__}: {error}")
    sys.exit(1)
PY
)"
        rc=$?
        set -e
        CHECK_MSG="${out//$'\n'/ }"
        return "$rc"
    elif command -v curl >/dev/null 2>&1; then
        CHECK_VIA="HTTP API (curl)"
        set +e
        out="$(curl -sS --max-time 10 -u "$NEO4J_USER:$PASSWORD" -H 'Content-Type: application/json' \
            -H 'Accept: application/json' -d '{"statements":[{"statement":"RETURN 1"}]}' -w '\n%{http_code}' \
            "http://$HOST:$HTTP_PORT/db/neo4j/tx/commit" 2>&1)"
        rc=$?
        set -e
        code="${out##*$'\n'}"
        CHECK_MSG="HTTP $code: ${out%$'\n'*}"
        [[ $rc -eq 0 ]] || return 1
        if [[ "$code" == 200 && "$out" == *'"errors":[]'* ]]; then return 0; fi
        if [[ "$code" == 401 || "$out" == *Neo.ClientError.Security.Unauthorized* \
              || "$out" == *Neo.ClientError.Security.AuthenticationRateLimit* ]]; then return 2; fi
        return 1
    else
        CHECK_VIA="Bolt port only (no neo4j Python driver, no curl)"
        CHECK_MSG=""
        return 0
    fi
}

LOG_OFFSET=0  # size of neo4j.log before this start: only newer lines are shown on failure
show_logs() {
    local n="${1:-40}" size=0
    [[ -f "$LOG_FILE" ]] && size="$(wc -c <"$LOG_FILE")"
    ((size >= LOG_OFFSET)) || LOG_OFFSET=0  # the log was rotated
    if ((size > LOG_OFFSET)); then
        printf -- '---- last %s lines of %s ----\n' "$n" "$LOG_FILE" >&2
        tail -c "+$((LOG_OFFSET + 1))" "$LOG_FILE" | tail -n "$n" >&2
    else
        printf -- '---- nothing new in %s ----\n' "$LOG_FILE" >&2
    fi
    log_tail "$CONSOLE_LOG" "$n" "JVM output"
}

password_hash() { printf '%s:%s' "$NEO4J_USER" "$PASSWORD" | sha256sum | cut -d' ' -f1; }

find_java() {
    if [[ -n "${JAVA:-}" ]]; then :
    elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
    else JAVA="java"
    fi
    command -v "$JAVA" >/dev/null 2>&1 || die "Java not found ('$JAVA'); install Java 17 or 21 or set JAVA / JAVA_HOME"
    local line major
    line="$("$JAVA" -version 2>&1 | grep -m1 -i 'version' || true)"
    major="$(sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/' <<<"$line")"
    if [[ "${major% *}" == 1 ]]; then major="${major#* }"; else major="${major% *}"; fi
    [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the version of '$JAVA' ($line)"
    ((major >= 17)) || die "Neo4j $NEO4J_VERSION needs Java 17 or 21, '$JAVA' is Java $major; set JAVA or JAVA_HOME"
    [[ "$major" == 17 || "$major" == 21 ]] || warn "Neo4j $NEO4J_VERSION supports Java 17 and 21; trying Java $major"
}

# --- the jars -------------------------------------------------------------------------------------------------------

jars_cached() {
    [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" && -f "$LIB_DIR/neo4j-$NEO4J_VERSION.jar" \
        && -f "$LIB_DIR/neo4j-browser-$BROWSER_VERSION.jar" ]]
}

fetch_jars() {
    jars_cached && return 0
    command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') is needed once to fetch Neo4j from Maven Central; install it or set MVN"
    [[ -f "$POM" ]] || die "missing $POM"
    say "fetching Neo4j $NEO4J_VERSION Community + Neo4j Browser $BROWSER_VERSION from Maven Central (first start only)..."
    local tmp="$CACHE_DIR/lib.partial.$$" mvn_log="$CACHE_DIR/maven.log" t0=$SECONDS
    mkdir -p "$CACHE_DIR"
    rm -rf "$tmp"
    # Maven writes nothing next to the pom (copy-dependencies needs no build directory); its output goes to a log that
    # is shown only on failure.
    if ! "$MVN" -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -Dneo4j.version="$NEO4J_VERSION" -Dneo4j.browser.version="$BROWSER_VERSION" \
            -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1; then
        rm -rf "$tmp"
        grep -E 'ERROR|BUILD' "$mvn_log" | tail -n 20 >&2 || tail -n 20 "$mvn_log" >&2
        die "Maven could not fetch the Neo4j jars (full output: $mvn_log). Check that Maven Central is reachable (proxy/mirror in ~/.m2/settings.xml) and that Neo4j $NEO4J_VERSION / Browser $BROWSER_VERSION exist there."
    fi
    [[ -f "$tmp/neo4j-$NEO4J_VERSION.jar" && -f "$tmp/neo4j-browser-$BROWSER_VERSION.jar" ]] \
        || { rm -rf "$tmp"; die "Maven ran but neo4j-$NEO4J_VERSION.jar / neo4j-browser-$BROWSER_VERSION.jar are missing from its output"; }
    rm -rf "$LIB_DIR" "$STAMP_FILE"
    mv "$tmp" "$LIB_DIR"
    printf '%s\n' "$STAMP" >"$STAMP_FILE"
    say "cached $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIB_DIR" | cut -f1)) in $LIB_DIR in $((SECONDS - t0)) s"
}

# --- configuration --------------------------------------------------------------------------------------------------

# docs/graphdex.grass as one line (comments dropped), the form `:style` takes inline
one_line_style() {
    tr '\n' ' ' <"$STYLE_FILE" | sed -e 's#/\*[^*]*\*/##g' -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//'
}

write_conf() {
    mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" "$DATA_DIR/data" "$DATA_DIR/plugins" "$DATA_DIR/import"
    local conf="$CONF_DIR/neo4j.conf"
    cat >"$conf.tmp" <<EOF
# Generated by scripts/neo4j.sh on every start: edits here are lost. Put extra settings in neo4j.local.conf.
server.directories.data=$DATA_DIR/data
server.directories.logs=$LOG_DIR
server.directories.run=$RUN_DIR
server.directories.plugins=$DATA_DIR/plugins
server.directories.import=$DATA_DIR/import
server.directories.lib=$LIB_DIR

server.default_listen_address=$HOST
server.default_advertised_address=$HOST
server.bolt.enabled=true
server.bolt.listen_address=$HOST:$BOLT_PORT
server.bolt.advertised_address=$HOST:$BOLT_PORT
server.http.enabled=true
server.http.listen_address=$HOST:$HTTP_PORT
server.http.advertised_address=$HOST:$HTTP_PORT
server.https.enabled=false

dbms.security.auth_enabled=true

server.memory.heap.initial_size=$HEAP_INITIAL
server.memory.heap.max_size=$HEAP_MAX
server.memory.pagecache.size=$PAGECACHE

# No usage data reporting, from the server nor from the Browser (and other clients).
dbms.usage_report.enabled=false
client.allow_telemetry=false

# A development box: keep at most about 1 GB of transaction logs.
db.tx_log.rotation.retention_policy=1G size
EOF
    if [[ -f "$STYLE_FILE" ]]; then
        # The Browser runs this after connecting: graphdex's colours and captions, without a drag and drop.
        printf '\n# graphdex style for the Neo4j Browser (from docs/graphdex.grass)\nbrowser.post_connect_cmd=style %s\n' "$(one_line_style)" >>"$conf.tmp"
    fi
    if [[ -f "$CONF_DIR/neo4j.local.conf" ]]; then
        { echo; echo "# ---- from neo4j.local.conf ----"; cat "$CONF_DIR/neo4j.local.conf"; } >>"$conf.tmp"
    fi
    mv "$conf.tmp" "$conf"
}

java_opts() {
    JAVA_OPTS=(
        "-Xms$HEAP_INITIAL" "-Xmx$HEAP_MAX"
        -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+DisableExplicitGC -XX:+ExitOnOutOfMemoryError
        -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields
        -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
        -Dlog4j2.disable.jmx=true -Dfile.encoding=UTF-8
        # Without these the page cache and the transaction-log native accessors fall back to slower paths.
        --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
        --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --enable-native-access=ALL-UNNAMED
    )
    if [[ -n "$EXTRA_JAVA_OPTS" ]]; then
        local extra
        read -r -a extra <<<"$EXTRA_JAVA_OPTS"
        JAVA_OPTS+=("${extra[@]}")
    fi
}

# Set the password of user neo4j before the first start (neo4j-admin dbms set-initial-password writes data/dbms/auth.ini,
# which the server reads when it creates the system database). On an existing data dir, warn if the password changed.
init_password() {
    if [[ -d "$DATA_DIR/data/databases/system" ]]; then
        if [[ -f "$PASSWORD_MARK" && "$(cat "$PASSWORD_MARK")" != "$(password_hash)" ]]; then
            warn "GRAPHDEX_NEO4J_PASSWORD is not the password $DATA_DIR was initialised with (a data directory keeps its first password)."
            warn "Unless it was changed in Neo4j since, use the old one, or delete $DATA_DIR to start afresh (this deletes the data)."
        fi
        return 0
    fi
    ((${#PASSWORD} >= 8)) || die "GRAPHDEX_NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)"
    say "new data directory $DATA_DIR: setting the password of user '$NEO4J_USER'"
    local out
    if ! out="$(NEO4J_HOME="$DATA_DIR" NEO4J_CONF="$CONF_DIR" \
            "$JAVA" -Xmx256m -Dfile.encoding=UTF-8 -cp "$LIB_DIR/*" "$ADMIN_TOOL" \
            dbms set-initial-password "$PASSWORD" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "neo4j-admin dbms set-initial-password failed"
    fi
    password_hash >"$PASSWORD_MARK"
}

# --- commands -------------------------------------------------------------------------------------------------------

print_ready() {
    local pid="$1"
    say "Neo4j $NEO4J_VERSION Community is running (pid $pid)"
    cat <<EOF
  Bolt:     bolt://$HOST:$BOLT_PORT   (user '$NEO4J_USER', password from GRAPHDEX_NEO4J_PASSWORD)
  Browser:  http://$HOST:$HTTP_PORT/browser/
  HTTP API: http://$HOST:$HTTP_PORT/db/neo4j/tx/commit
  Data:     $DATA_DIR
  Log:      $LOG_FILE
  graphdex: GRAPHDEX_STORE=neo4j$([[ "$BOLT_PORT" == 7687 ]] || echo " GRAPHDEX_NEO4J_URI=bolt://$HOST:$BOLT_PORT")
EOF
}

# One round of wait_ready: 0 when Bolt accepts connections and an authenticated query works, else non-zero; dies when
# the password is rejected. $1: pid, $2: stop the server on auth failure.
bolt_ready() {
    local pid="$1" stop_on_auth_failure="$2" rc=0
    port_open "$HOST" "$BOLT_PORT" || return 1
    auth_check || rc=$?
    ((rc == 2)) || return "$rc"
    printf '%s\n' "$CHECK_MSG" >&2
    if [[ "$stop_on_auth_failure" == yes ]]; then stop_server "$pid" >/dev/null; fi
    die "Neo4j rejected user '$NEO4J_USER' with GRAPHDEX_NEO4J_PASSWORD: $DATA_DIR was initialised with (or later given) another password. Set GRAPHDEX_NEO4J_PASSWORD to that one, or delete $DATA_DIR to start afresh (this deletes the data).$([[ "$stop_on_auth_failure" == yes ]] && echo " The server was stopped.")"
}

# Wait until Bolt accepts connections and an authenticated query works. $1: pid, $2: stop the server on auth failure.
wait_ready() {
    local pid="$1" rc=0
    wait_until "$pid" "$PID_FILE" $((SECONDS + START_TIMEOUT)) 0.5 \
        "waiting for Neo4j to accept authenticated queries (up to $START_TIMEOUT s)..." bolt_ready "$pid" "$2" || rc=$?
    case "$rc" in
        1) show_logs 40
           die "Neo4j exited during startup (see the log above)" ;;
        2) show_logs 40
           [[ -z "$CHECK_MSG" ]] || printf 'last check via %s: %s\n' "$CHECK_VIA" "$CHECK_MSG" >&2
           die "Neo4j did not become ready within $START_TIMEOUT s (GRAPHDEX_NEO4J_START_TIMEOUT). It is still running as pid $pid: wait and run 'scripts/neo4j.sh status', or 'scripts/neo4j.sh stop'." ;;
    esac
    password_hash >"$PASSWORD_MARK"
}

cmd_start() {
    take_lock "$RUN_DIR/neo4j.lock" 600 "$DATA_DIR"  # one start/stop at a time per data directory
    local pid
    pid="$(server_pid)"
    if [[ -n "$pid" ]]; then
        say "already running (pid $pid)"
        wait_ready "$pid" no
        print_ready "$pid"
        return 0
    fi
    local port
    for port in "$BOLT_PORT" "$HTTP_PORT"; do
        port_open "$HOST" "$port" && die "port $HOST:$port is already in use by another process (not the server of $DATA_DIR); stop it or set GRAPHDEX_NEO4J_BOLT_PORT / GRAPHDEX_NEO4J_HTTP_PORT"
    done
    find_java
    fetch_jars
    write_conf
    init_password
    java_opts
    if [[ -f "$LOG_FILE" ]]; then LOG_OFFSET="$(wc -c <"$LOG_FILE")"; fi
    say "starting Neo4j $NEO4J_VERSION (heap $HEAP_INITIAL..$HEAP_MAX, page cache $PAGECACHE, data $DATA_DIR)"
    local t0=$SECONDS
    # the pid file holds the JVM's pid; console.log (the previous one is console.log.1) gets the JVM's output
    spawn "$DATA_DIR" "$PID_FILE" "$CONSOLE_LOG" \
        "$JAVA" "${JAVA_OPTS[@]}" -cp "$LIB_DIR/*" "$ENTRY_POINT" --home-dir="$DATA_DIR" --config-dir="$CONF_DIR" \
        || { show_logs 40; die "the server process did not start"; }
    pid="$SPAWNED_PID"
    wait_ready "$pid" yes
    say "ready in $((SECONDS - t0)) s (checked via $CHECK_VIA)"
    print_ready "$pid"
}

# Stop the given pid: SIGTERM, wait, SIGKILL.
stop_server() {
    local pid="$1" t0=$SECONDS
    say "stopping Neo4j (pid $pid)..."
    stop_pid "$pid" "$PID_FILE" "$STOP_TIMEOUT" 0.5 1 \
        "Neo4j did not stop within $STOP_TIMEOUT s (GRAPHDEX_NEO4J_STOP_TIMEOUT); killing it (recovery runs on next start)"
    say "stopped in $((SECONDS - t0)) s"
}

cmd_stop() {
    [[ -d "$DATA_DIR" ]] || { say "not running (no data directory $DATA_DIR)"; return 0; }
    take_lock "$RUN_DIR/neo4j.lock" 600 "$DATA_DIR"  # one start/stop at a time per data directory
    local pid
    pid="$(server_pid)"
    if [[ -z "$pid" ]]; then
        say "not running"
        return 0
    fi
    stop_server "$pid"
}

cmd_status() {
    local pid rc
    pid="$(server_pid)"
    if [[ -z "$pid" ]]; then
        say "not running (data $DATA_DIR)"
        return 3
    fi
    if ! port_open "$HOST" "$BOLT_PORT"; then
        say "process running (pid $pid) but Bolt $HOST:$BOLT_PORT does not accept connections (starting up or failing; see $LOG_FILE)"
        return 3
    fi
    rc=0
    auth_check || rc=$?
    case "$rc" in
        0) say "running (pid $pid), Bolt bolt://$HOST:$BOLT_PORT, Browser http://$HOST:$HTTP_PORT/browser/, query as '$NEO4J_USER' works" ;;
        2) say "running (pid $pid) and reachable at bolt://$HOST:$BOLT_PORT, but GRAPHDEX_NEO4J_PASSWORD is rejected: $CHECK_MSG" ;;
        *) say "process running (pid $pid), Bolt port open, but a query fails (starting up?): $CHECK_MSG"
           return 3 ;;
    esac
}

cmd_logs() { print_log "$LOG_FILE" "${1:-40}"; }

main "$@"
