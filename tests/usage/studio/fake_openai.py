"""A real OpenAI-compatible HTTP server on loopback, for the Studio's tests: it streams chat completions as SSE
(`data: {...}` chunks, a last chunk with `usage`, then `data: [DONE]`), answers `/v1/images/generations` (base64
images) and `/v1/audio/speech` (audio bytes), and can be told to fail, time out or stall on any of them.

Modes (`Behaviour.mode`): ok, unauthorized (401), fail (500), bad_request (400), timeout (no answer for
`stall_seconds`), stall (chat: some chunks then silence; images and speech: the headers and half the body, then
silence), urls (images come back as links, not bytes), gpt_image (images refuse `response_format`, as OpenAI's GPT
image models do). `fail_first` makes the first N requests fail with a 500 whatever the mode (the SDK's retries).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import wave
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


WAV_SILENCE = _wav()


@dataclass
class Behaviour:
    mode: str = "ok"  # ok | fail | bad_request | timeout | stall
    tokens: list[str] = field(default_factory=lambda: [f"word{i} " for i in range(10)])
    prompt_tokens: int = 1500
    completion_tokens: int = 700
    token_delay: float = 0.0  # seconds between chunks
    stall_after: int = 3  # stall: chunks sent before going silent
    stall_seconds: float = 3.0
    fail_first: int = 0
    image: bytes = PNG_1PX  # what each generated image is
    speech: bytes = WAV_SILENCE  # what the speech endpoint answers
    speech_type: str = "audio/wav"
    requests: list[dict[str, Any]] = field(default_factory=list)


class FakeOpenAI:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.release = threading.Event()  # ends a stall or a timeout early (server shutdown)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.behaviour.requests.append({"path": self.path, "body": body, "auth": self.headers["Authorization"]})
                fake.answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _json(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        behaviour = self.behaviour
        if behaviour.fail_first > 0:
            behaviour.fail_first -= 1
            return self._json(handler, 500, {"error": {"message": "upstream hiccup", "type": "server_error"}})
        if behaviour.mode == "unauthorized":
            return self._json(handler, 401, {"error": {"message": "Incorrect API key", "type": "invalid_api_key"}})
        if behaviour.mode == "fail":
            return self._json(handler, 500, {"error": {"message": "upstream exploded", "type": "server_error"}})
        if behaviour.mode == "bad_request":
            return self._json(handler, 400, {"error": {"message": "This prompt is not allowed.", "type": "invalid"}})
        if behaviour.mode == "timeout":
            self.release.wait(behaviour.stall_seconds)
            return self._json(handler, 500, {"error": {"message": "too late"}})
        if handler.path.endswith("/images/generations"):
            return self._images(handler, body)
        if handler.path.endswith("/audio/speech"):
            return self._bytes(handler, behaviour.speech, behaviour.speech_type)
        return self._chat(handler, body)

    def _images(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        behaviour, count = self.behaviour, int(body.get("n", 1))
        if behaviour.mode == "gpt_image" and "response_format" in body:
            message = "Unknown parameter: 'response_format'."
            return self._json(handler, 400, {"error": {"message": message, "type": "invalid_request_error"}})
        if behaviour.mode == "urls":
            return self._json(handler, 200, {"created": 0, "data": [{"url": "http://127.0.0.1:9/image.png"}] * count})
        image = base64.b64encode(behaviour.image).decode()
        payload = json.dumps({"created": 0, "data": [{"b64_json": image}] * count}).encode()
        return self._bytes(handler, payload, "application/json")

    def _bytes(self, handler: BaseHTTPRequestHandler, data: bytes, content_type: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        try:
            if self.behaviour.mode == "stall":  # half the body, then silence: the client's read times out
                handler.wfile.write(data[: len(data) // 2])
                handler.wfile.flush()
                self.release.wait(self.behaviour.stall_seconds)
                return
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up

    def _chat(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        behaviour = self.behaviour
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        model = body.get("model", "fake")
        try:
            for index, token in enumerate(behaviour.tokens):
                if behaviour.mode == "stall" and index == behaviour.stall_after:
                    self.release.wait(behaviour.stall_seconds)
                    return
                if behaviour.token_delay:
                    time.sleep(behaviour.token_delay)
                self._event(handler, model, {"choices": [{"index": 0, "delta": {"content": token}}]})
            self._event(handler, model, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            usage = {
                "prompt_tokens": behaviour.prompt_tokens,
                "completion_tokens": behaviour.completion_tokens,
                "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
            }
            self._event(handler, model, {"choices": [], "usage": usage})
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client closed the stream (a stop)

    def _event(self, handler: BaseHTTPRequestHandler, model: str, fields: dict[str, Any]) -> None:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, **fields}
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.flush()
