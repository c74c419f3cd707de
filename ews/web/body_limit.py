"""An ASGI middleware that refuses request bodies over a limit with 413, before the application reads them.

Twilio's webhooks are form posts of a few KB. A larger body is refused at once when its
``Content-Length`` says so (nothing of it is read), and a chunked body (no length given) is counted while
it arrives and cut off at the limit: either way the application never sees it, so nothing is stored.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""The largest request body ``ews serve`` accepts (Twilio's status callbacks and messages are a few KB)."""


class _BodyTooLargeError(Exception):
    """Raised from ``receive`` when a streamed body passes the limit; answered with 413."""


class BodyLimit:
    """Wrap an ASGI app so that HTTP request bodies over ``max_bytes`` get ``413 Content Too Large``.

    Parameters
    ----------
    app
        The ASGI application.
    max_bytes
        The largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (only ``http`` scopes are limited)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        lengths = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if len(lengths) > 1 or not text.isdigit() or len(text) > 18:
                await _answer(send, 400, b"invalid Content-Length")
                return
            if int(text) > self.max_bytes:
                log.warning("refused %s: Content-Length %s over the %d-byte limit", path, text, self.max_bytes)
                await _answer(send, 413, self._too_large())
                return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            log.warning("refused %s: body over the %d-byte limit (stopped reading)", path, self.max_bytes)
            if not started:
                await _answer(send, 413, self._too_large())

    def _too_large(self) -> bytes:
        return f"request body larger than {self.max_bytes} bytes; ews serve accepts Twilio webhooks only".encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
