"""uvicorn's HTTP protocols, answering malformed HTTP with OpenAI's error JSON.

uvicorn answers a request it cannot parse (a broken request line or header, an invalid
``Content-Length``) itself, before any ASGI app sees it, with a ``text/plain`` 400. Its
protocol classes are uvicorn's extension point for that (``uvicorn.run(http=...)``); these
subclasses change only that answer's body and type, so a client that parses error JSON gets
``{"error": {...}}`` as from every other error.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def malformed_body(msg: str) -> bytes:
    error = {
        "message": f"Malformed HTTP request: {msg}",
        "type": "invalid_request_error",
        "param": None,
        "code": "malformed_http",
    }
    return json.dumps({"error": error}).encode()


class JsonH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = malformed_body(msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def protocol() -> type[asyncio.Protocol]:
    """The protocol uvicorn's ``http="auto"`` would pick, answering malformed HTTP as JSON."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is optional: uvicorn then parses with h11
        return JsonH11Protocol

    class JsonHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = malformed_body(msg)
            head = (
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head + body)
            self.transport.close()

    return JsonHttpToolsProtocol
