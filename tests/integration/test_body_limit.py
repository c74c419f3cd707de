"""The request-body limit of ``ews serve``: around a tiny ASGI app that reports what it read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from ews.web.body_limit import BodyLimit

LIMIT = 1000


class Echo:
    """Reads the whole body and answers its length; counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.lifespan: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.calls += 1
        size, more = 0, True
        while more:
            message: Message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
def client(echo: Echo) -> Iterator[TestClient]:
    with TestClient(BodyLimit(echo, max_bytes=LIMIT)) as c:
        yield c


def test_a_body_at_the_limit_is_read(client: TestClient, echo: Echo) -> None:
    answer = client.post("/", content=b"x" * LIMIT)
    assert (answer.status_code, answer.text) == (200, str(LIMIT))
    assert echo.lifespan == ["lifespan.startup"]  # other scopes pass through


def test_a_content_length_over_the_limit_never_reaches_the_app(client: TestClient, echo: Echo) -> None:
    answer = client.post("/", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 413
    assert answer.text == "request body larger than 1000 bytes; ews serve accepts Twilio webhooks only"
    assert echo.calls == 0


def test_a_chunked_body_is_cut_off_at_the_limit(client: TestClient, echo: Echo) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 300

    answer = client.post("/", content=chunks())
    assert answer.status_code == 413
    assert echo.calls == 1  # it started reading, and got no further than the limit


@pytest.mark.parametrize("length", ["-1", "12abc", "9" * 40])
def test_an_unreadable_content_length_is_a_bad_request(client: TestClient, echo: Echo, length: str) -> None:
    answer = client.post("/", content=b"x", headers={"Content-Length": length})
    assert answer.status_code == 400
    assert echo.calls == 0
