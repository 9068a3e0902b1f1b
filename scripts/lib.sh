# Shared helpers of scripts/neo4j.sh, scripts/ray.sh and scripts/local-llm.sh; sourced, never run. Sourcing it only
# defines functions. A script sets GRAPHDEX_SCRIPT (its name, the prefix of its messages) before sourcing it, and
# defines usage and cmd_start, cmd_stop, cmd_status and cmd_logs for `main`. Safe under set -euo pipefail.
# shellcheck shell=bash

say() { printf '%s: %s\n' "${GRAPHDEX_SCRIPT:-${0##*/}}" "$*"; }
warn() { printf '%s: WARNING: %s\n' "${GRAPHDEX_SCRIPT:-${0##*/}}" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "${GRAPHDEX_SCRIPT:-${0##*/}}" "$*" >&2; exit 1; }

# load_dotenv FILE PREFIX: take the PREFIX* variables of FILE (the repository's .env, which graphdex itself reads) that
# are not set yet, as shell variables (not exported), so a script and the app agree. Plain KEY=VALUE lines (optionally
# `export KEY=VALUE`, the value optionally in single or double quotes) whose KEY is PREFIX and upper-case letters or _;
# everything else is skipped, and the file is never executed. Set variables win, even empty ones; so does a key's first
# line in the file.
load_dotenv() {
    local file="$1" re="^[[:space:]]*(export[[:space:]]+)?(${2}[A-Z_]+)[[:space:]]*=[[:space:]]*(.*)\$" line key value
    [[ -f "$file" ]] || return 0
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ "$line" =~ $re ]] || continue
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        value="${value%"${value##*[![:space:]]}"}"  # strip trailing blanks (and a CR)
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
        [[ -n "${!key+x}" ]] || printf -v "$key" '%s' "$value"
    done <"$file"
}

# require_numbers PREFIX WHAT NAME...: die unless each variable NAME holds only digits ("PREFIX<NAME> must be WHAT").
require_numbers() {
    local prefix="$1" what="$2" name
    shift 2
    for name in "$@"; do
        [[ "${!name}" =~ ^[0-9]+$ ]] || die "$prefix$name must be $what, got '${!name}'"
    done
}

# in_dir DIR PATH: PATH when it is absolute, else DIR/PATH (as text: not normalised, need not exist).
in_dir() { if [[ "$2" == /* ]]; then printf '%s\n' "$2"; else printf '%s/%s\n' "$1" "$2"; fi; }

# abs_path DIR PATH: in_dir DIR PATH, normalised (no . or .. left) where realpath exists.
abs_path() {
    local p
    p="$(in_dir "$1" "$2")"
    if command -v realpath >/dev/null 2>&1; then realpath -m -- "$p"
    elif [[ -d "$p" ]]; then (cd -- "$p" && pwd -P)
    else printf '%s\n' "$p"
    fi
}

# take_lock LOCK_FILE TIMEOUT [WHAT]: one start/stop at a time, on file descriptor 9 (which spawn keeps from the
# services); waits up to TIMEOUT s for another holder (WHAT names what it is running on). A no-op without flock.
take_lock() {
    mkdir -p "$(dirname -- "$1")"
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$1"
    if ! flock -n 9; then
        say "another ${GRAPHDEX_SCRIPT:-${0##*/}} start/stop is running${3:+ on $3}; waiting for it..."
        flock -w "$2" 9 || die "could not get the lock $1"
    fi
}

# port_open HOST PORT: does something accept TCP connections on HOST:PORT?
port_open() {
    if command -v timeout >/dev/null 2>&1; then
        timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
    else
        bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
    fi
}

read_pid() { tr -dc '0-9' <"$1" 2>/dev/null || true; }  # read_pid FILE: the digits in FILE, if any

# live_pid PID_FILE PATTERN: the pid in PID_FILE when that process runs and its command line matches PATTERN (a
# recycled pid does not count), else nothing, and a stale PID_FILE is removed.
live_pid() {
    local pid
    [[ -f "$1" ]] || return 0
    pid="$(read_pid "$1")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        if [[ ! -r "/proc/$pid/cmdline" ]] || tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2"; then
            echo "$pid"
            return 0
        fi
    fi
    rm -f "$1"
}

# spawn DIR PID_FILE LOG_FILE COMMAND...: run COMMAND in DIR in the background, in a session of its own (setsid) so
# that it outlives this shell and its terminal, without the lock (fd 9), its output appended to LOG_FILE (an earlier
# LOG_FILE is kept as LOG_FILE.1). The child writes its own pid to PID_FILE and then becomes COMMAND (exec), so
# PID_FILE holds COMMAND's pid. Waits up to 5 s for it: sets SPAWNED_PID, and fails if there is none.
spawn() {
    local dir="$1" pid_file="$2" log_file="$3" i
    shift 3
    rm -f "$pid_file"
    if [[ -f "$log_file" ]]; then mv -f "$log_file" "$log_file.1"; fi
    local launcher=(bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" "$@")
    if command -v setsid >/dev/null 2>&1; then launcher=(setsid "${launcher[@]}"); fi
    (exec 9>&-; cd "$dir" || exit 1; nohup "${launcher[@]}" </dev/null >>"$log_file" 2>&1 &)
    for i in $(seq 50); do
        [[ -s "$pid_file" ]] && break
        sleep 0.1
    done
    SPAWNED_PID="$(read_pid "$pid_file")"
    [[ -n "$SPAWNED_PID" ]]
}

# wait_until PID PID_FILE DEADLINE INTERVAL MESSAGE CHECK...: run CHECK (in this shell) every INTERVAL s until it
# succeeds. 1: the process PID (none when empty) exited first, and its PID_FILE is removed; 2: DEADLINE (in $SECONDS)
# passed. MESSAGE, when not empty, is said once when the first CHECK fails.
wait_until() {
    local pid="$1" pid_file="$2" deadline="$3" interval="$4" message="$5"
    shift 5
    until "$@"; do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            return 1
        fi
        ((SECONDS < deadline)) || return 2
        if [[ -n "$message" ]]; then
            say "$message"
            message=""
        fi
        sleep "$interval"
    done
}

# stop_pid PID PID_FILE TIMEOUT INTERVAL GRACE [WARNING]: SIGTERM to PID, checked every INTERVAL s; after TIMEOUT s,
# warn WARNING (if given), SIGKILL and wait GRACE s. Then PID_FILE is removed.
stop_pid() {
    local pid="$1" deadline=$((SECONDS + $3))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            [[ -z "${6:-}" ]] || warn "$6"
            kill -KILL "$pid" 2>/dev/null || true
            sleep "$5"
            break
        fi
        sleep "$4"
    done
    rm -f "$2"
}

# log_tail FILE N [NOTE]: the last N lines of FILE on stderr under a header (with NOTE), when FILE is not empty.
log_tail() {
    [[ -s "$1" ]] || return 0
    printf -- '---- last %s lines of %s%s ----\n' "$2" "$1" "${3:+ ($3)}" >&2
    tail -n "$2" "$1" >&2
}

check_lines() { [[ "$1" =~ ^[0-9]+$ ]] || die "logs takes a number of lines"; }

# print_log FILE N: the `logs` command of a single-log service.
print_log() {
    check_lines "$2"
    [[ -f "$1" ]] || die "no log yet at $1"
    tail -n "$2" "$1"
}

# main ARGS...: the command line all three scripts share.
main() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart) cmd_stop; cmd_start ;;
        status) cmd_status ;;
        logs) cmd_logs "${2:-40}" ;;
        -h|--help|help) usage ;;
        "") usage >&2; exit 2 ;;
        *) printf '%s: unknown command %q\n\n' "${GRAPHDEX_SCRIPT:-${0##*/}}" "$1" >&2; usage >&2; exit 2 ;;
    esac
}
