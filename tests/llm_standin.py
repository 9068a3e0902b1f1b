"""A stand-in for an OpenAI-compatible model server, on 127.0.0.1, replaying recorded responses.

graphdex talks to it through litellm over real HTTP, exactly as to a provider. Each recording names the prompt it
answers (substrings that must all appear in the conversation; the first recording that matches answers, so the
specific ones come first) and a sequence of responses for successive calls: a
429, a response slower than the client's timeout, or a message (sent whole, or streamed as server-sent events). After
the last response of a sequence, the last one is repeated. Calls are counted per recording, so tests can check
retries and cache hits.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

RECORDINGS = Path(__file__).parent / "data" / "llm_recordings.json"
EMBEDDING_DIM = 64


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


class StandInModel:
    def __init__(self, recordings: Path = RECORDINGS) -> None:
        self.recordings: list[dict[str, Any]] = json.loads(recordings.read_text())
        self.calls: Counter = Counter()  # recording name -> calls received
        self.response_formats: dict[str, Any] = {}  # recording name -> the response_format of its last call
        self.unmatched: list[str] = []
        self.embedding_calls = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> StandInModel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond_to(self, conversation: str) -> tuple[str, dict[str, Any]] | None:
        for recording in self.recordings:
            if all(part in conversation for part in recording["match"]):
                with self._lock:
                    self.calls[recording["name"]] += 1
                    n = self.calls[recording["name"]]
                responses = recording["responses"]
                return recording["name"], responses[min(n, len(responses)) - 1]
        with self._lock:
            self.unmatched.append(conversation[:300])
        return None

    def _handler(self):
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): exactly what the slow recordings are for

            def _send_json(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.endswith("/embeddings"):
                    self._embeddings(request)
                elif self.path.endswith("/chat/completions"):
                    self._chat(request)
                else:
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

            def _embeddings(self, request: dict) -> None:
                inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
                with model._lock:
                    model.embedding_calls += 1
                data = []
                for i, text in enumerate(inputs):
                    seed = int.from_bytes(hashlib.sha256(str(text).lower().encode()).digest()[:8], "little")
                    vector = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM)
                    data.append({"object": "embedding", "index": i, "embedding": (vector / np.linalg.norm(vector)).tolist()})
                self._send_json(200, {"object": "list", "data": data, "model": request.get("model"),
                                      "usage": {"prompt_tokens": sum(_tokens(str(t)) for t in inputs), "total_tokens": sum(_tokens(str(t)) for t in inputs)}})

            def _chat(self, request: dict) -> None:
                conversation = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
                found = model.respond_to(conversation)
                if found is None:
                    self._send_json(400, {"error": {"message": "the stand-in has no recording for this prompt", "type": "invalid_request_error"}})
                    return
                name, response = found
                model.response_formats[name] = request.get("response_format")
                if "status" in response:
                    self._send_json(response["status"], {"error": {"message": response.get("message", "Rate limit reached"), "type": "rate_limit_exceeded"}})
                    return
                time.sleep(response.get("delay", 0))
                content = response["content"]
                usage = {"prompt_tokens": _tokens(conversation), "completion_tokens": _tokens(content),
                         "total_tokens": _tokens(conversation) + _tokens(content)}
                if request.get("stream"):
                    self._stream(request, content, usage)
                    return
                self._send_json(200, {"id": f"chatcmpl-{name}", "object": "chat.completion", "created": int(time.time()), "model": request.get("model"),
                                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                                      "usage": usage})

            def _stream(self, request: dict, content: str, usage: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [word + " " for word in content.split(" ")]
                pieces[-1] = pieces[-1].rstrip(" ")
                for i, piece in enumerate(pieces):
                    chunk = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": int(time.time()), "model": request.get("model"),
                             "choices": [{"index": 0, "delta": {"content": piece} if i else {"role": "assistant", "content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                final = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": int(time.time()), "model": request.get("model"),
                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        return Handler
