"""A local OpenAI-compatible ``/v1/chat/completions`` stub server on loopback (real sockets), for tests and benchmarks.

``OpenAIStub`` runs :class:`http.server.ThreadingHTTPServer` on ``127.0.0.1`` with port 0 in a daemon thread. It can
fail the first N calls with a status, always fail, stall past the client's timeout, add a fixed latency, and records
every request body and the largest number of requests it had in flight at once.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def echo_reply(body: dict[str, Any]) -> str:
    """Default reply: 'stub:' + 8 hex digits of the last message's hash (deterministic per request)."""
    content = body["messages"][-1]["content"]
    return "stub:" + hashlib.sha256(content.encode()).hexdigest()[:8]


@dataclass
class StubBehaviour:
    """What the stub does.

    Attributes:
        fail_first: answer this many calls with ``fail_status`` before succeeding.
        fail_status: status code of the failures.
        always_fail: answer every call with ``fail_status``.
        stall_s: sleep this long before answering (longer than the client's timeout = a stall).
        latency_s: fixed artificial latency of every successful answer.
        reply: ``request body -> content`` of successful answers.
    """

    fail_first: int = 0
    fail_status: int = 500
    always_fail: bool = False
    stall_s: float = 0.0
    latency_s: float = 0.0
    reply: Callable[[dict[str, Any]], str] = echo_reply


@dataclass
class StubLog:
    """What the stub saw: request bodies, call count, in-flight maximum."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class OpenAIStub:
    """Context manager: ``with OpenAIStub(StubBehaviour(...)) as stub: stub.base_url``."""

    def __init__(self, behaviour: StubBehaviour | None = None):
        self.behaviour = behaviour or StubBehaviour()
        self.log = StubLog()
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on close so stalled handlers end promptly
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real inference servers
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body writes

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub.lock:
                    stub.log.calls += 1
                    call = stub.log.calls
                    stub.log.bodies.append(body)
                    stub.log.headers.append(dict(self.headers))
                    stub.log.in_flight += 1
                    stub.log.max_in_flight = max(stub.log.max_in_flight, stub.log.in_flight)
                try:
                    status, payload = stub.answer(self.path, body, call)
                finally:  # counted as in flight until the answer is ready (before it is sent)
                    with stub.lock:
                        stub.log.in_flight -= 1
                try:
                    self._send(status, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/stats":  # for a stub in another process (benchmarks)
                    with stub.lock:
                        self._send(200, {"calls": stub.log.calls, "max_in_flight": stub.log.max_in_flight})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, path: str, body: dict[str, Any], call: int) -> tuple[int, dict[str, Any]]:
        """Status and JSON payload of the answer to call number ``call``."""
        behaviour = self.behaviour
        if path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}"}}
        if behaviour.stall_s:
            self.release.wait(behaviour.stall_s)
        if behaviour.always_fail or call <= behaviour.fail_first:
            return behaviour.fail_status, {"error": {"message": f"stub failure on call {call}"}}
        if behaviour.latency_s:
            time.sleep(behaviour.latency_s)
        content = behaviour.reply(body)
        return 200, {"id": f"stub-{call}", "object": "chat.completion", "model": body.get("model"),
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": len(content.split()),
                               "total_tokens": 1 + len(content.split())}}

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(argv: list[str] | None = None) -> None:
    """Run a stub in the foreground (another process, for benchmarks): prints its base URL, serves until killed."""
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server on 127.0.0.1")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    stub = OpenAIStub(StubBehaviour(latency_s=args.latency_ms / 1000))
    print(stub.base_url, flush=True)
    try:
        stub.server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    serve()
