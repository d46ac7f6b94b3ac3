"""A small chat-completions server on 127.0.0.1 for the ``openai`` provider's tests.

It speaks the real protocol (JSON in, server-sent events out) and behaves by model name:
``streams`` answers "Hello\\nworld" in pieces with usage; ``rate-limited`` answers 429 with
``Retry-After`` once, then streams; ``broken`` always answers 500; ``stalls`` sends one piece and
then nothing; ``garbled`` sends malformed JSON; ``slow`` sends a piece every 0.1 s for 30 s; any
other model is unknown (404). A wrong API key gets 401.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "test-key"


class ChatServer:
    """The running server: its base URL and what it received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rate_limited_once = False
        self.disconnects = 0
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"headers": dict(self.headers), "body": body})
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    return self._json(401, {"error": {"message": "Incorrect API key provided"}})
                model = body.get("model")
                if model == "rate-limited" and not server.rate_limited_once:
                    server.rate_limited_once = True
                    return self._json(
                        429, {"error": {"message": "Slow down"}}, {"Retry-After": "0.3"}
                    )
                if model == "broken":
                    return self._json(500, {"error": {"message": "The engine is overloaded"}})
                if model not in ("streams", "rate-limited", "stalls", "garbled", "slow"):
                    return self._json(
                        404, {"error": {"message": f"The model `{model}` does not exist"}}
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self._stream(model)
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnects += 1

            def _stream(self, model: str) -> None:
                def event(data: Any) -> None:
                    text = data if isinstance(data, str) else json.dumps(data)
                    self.wfile.write(f"data: {text}\n\n".encode())
                    self.wfile.flush()

                def piece(text: str) -> dict[str, Any]:
                    return {"model": model, "choices": [{"index": 0, "delta": {"content": text}}]}

                if model == "garbled":
                    event("{not json")
                    return
                if model == "stalls":
                    event(piece("Hel"))
                    time.sleep(5)
                    return
                if model == "slow":
                    for _ in range(300):
                        event(piece("tick\n"))
                        time.sleep(0.1)
                    return
                for text in ("Hel", "lo\nwor", "ld"):
                    event(piece(text))
                usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
                event({"model": model, "choices": [], "usage": usage})
                event("[DONE]")

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def chat_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    """A chat server for this test; its key is in ``$TEST_CHAT_KEY``."""
    server = ChatServer()
    server.thread.start()
    monkeypatch.setenv("TEST_CHAT_KEY", API_KEY)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
