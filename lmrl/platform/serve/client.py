"""``lmrl chat URL``: a small terminal client for a served dialogue policy.

Speaks the OpenAI chat API with the standard library only (``urllib``), so it
runs anywhere ``lmrl`` is installed, without torch or Ray. Each line you type
is a ``user`` message; the policy's reply streams back and joins the
history. ``/reset`` starts a new conversation; ``/quit``, ``q`` or Ctrl-D
leaves. Piped input works too::

    printf 'Hi, I need some help.\\nWhere is my order?\\n' | lmrl chat http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, TextIO

from lmrl.errors import LmrlError

QUIT = {"/quit", "/exit", "q", "quit"}


def api_base(url: str) -> str:
    """``http://host:port`` or ``http://host:port/v1`` -> ``http://host:port/v1``."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = "http://" + base
    return base if base.endswith("/v1") else base + "/v1"


class ChatClient:
    """A minimal OpenAI chat client over ``urllib``.

    Args:
        url: The server's base URL.
        api_key: Bearer key (``None``: send none).
        timeout_s: Socket timeout per request.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        self.base = api_base(url)
        self.api_key = api_key
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            return urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise LmrlError(f"{self.base}{path}: HTTP {exc.code}: {_error_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LmrlError(
                f"cannot reach {self.base}: {reason}; is `lmrl serve` running there (check the URL and port)?"
            ) from None

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models``."""
        with self._request("GET", "/models") as resp:
            return json.load(resp)["data"]

    def stream_chat(self, messages: list[dict[str, str]], **params: Any) -> Iterator[str]:
        """Yields the reply's text pieces as the server streams them."""
        body = {"messages": messages, "stream": True, **{k: v for k, v in params.items() if v is not None}}
        with self._request("POST", "/chat/completions", body) as resp:
            for raw in resp:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                for choice in json.loads(data).get("choices", []):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read())["error"]["message"]
    except Exception:  # not an OpenAI-style body
        return exc.reason or "error"


def chat_loop(
    client: ChatClient,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Runs the conversation until ``/quit`` or end of input.

    Returns:
        0. Request errors (a 4xx, a timeout) are printed and the conversation goes on.
    """
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    card = client.models()[0]
    model = model or card["id"]
    interactive = stdin.isatty()
    print(
        f"connected to {model} ({card.get('env_id') or 'no env'}, {card.get('action_mode')} mode) at {client.base}\n"
        "type a message; /reset starts over, /quit or Ctrl-D leaves",
        file=stdout,
    )
    messages: list[dict[str, str]] = []
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text in QUIT:
            break
        if text == "/reset":
            messages = []
            print("(new conversation)", file=stdout)
            continue
        if not interactive:
            print(f"you> {text}", file=stdout)
        messages.append({"role": "user", "content": text})
        print("policy> ", end="", file=stdout, flush=True)
        try:
            reply = ""
            for piece in client.stream_chat(messages, model=model, temperature=temperature, max_tokens=max_tokens):
                reply += piece
                print(piece, end="", file=stdout, flush=True)
        except LmrlError as exc:
            messages.pop()
            print(f"\nerror: {exc}", file=stdout)
            continue
        print(file=stdout)
        messages.append({"role": "assistant", "content": reply})
    return 0
