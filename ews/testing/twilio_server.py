"""A loopback server that speaks enough of Twilio's Messages API for the official ``twilio`` client.

It is the fake network for tests and benchmarks: it accepts every well-formed number, including ews's
fictional range (``+6289990000xxxx``), and never forwards anything. What it imitates:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form body) -> ``201`` with Twilio's JSON shape;
- ``GET .../Messages/{Sid}.json`` and ``GET .../Messages.json`` (filters ``To``, ``From``, ``DateSent``,
  ``DateSent>``, ``DateSent<``; paging with ``PageSize``/``Page`` and ``next_page_uri``, newest first);
- HTTP Basic auth against the configured account SID and auth token (``401``, Twilio code 20003);
- synchronous validation errors in Twilio's legacy error shape (``{"code", "message", "more_info", "status"}``):
  21211 invalid ``To``, 21610 unsubscribed recipient, 21614 not a mobile number, 63016 WhatsApp free text
  outside the 24-hour session window (Twilio itself reports 63016 *asynchronously*, as a ``failed`` status;
  ``window_errors_async=True`` imitates that instead);
- signed status callbacks (``X-Twilio-Signature`` computed with ``twilio.request_validator``): ``sent`` then
  ``delivered``, or ``undelivered`` with 30003 for the numbers in ``undelivered``; optionally duplicated or
  reversed, as real callbacks can be;
- fault injection on message create, reproducible from ``seed``: ``"429"`` (with ``Retry-After`` and code
  20429), ``"500"``, ``"hang"`` (the message is created, then the answer comes after ``hang_seconds``: the
  ambiguous case a dispatcher must reconcile), ``"drop"`` (created, then the connection is closed without an
  answer), ``"slow"`` (created and answered after ``slow_seconds``); ``fail_next(kind, n)`` scripts them.

Every accepted message is in :attr:`TwilioStub.messages` and every request in :attr:`TwilioStub.requests`
(arrival time on ``time.monotonic()``), so tests assert "exactly one message per recipient" and retry gaps on
the stub's own clock rather than the test's.
"""

from __future__ import annotations

import base64
import binascii
import http.server
import json
import queue
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
FAULT_KINDS = ("429", "500", "hang", "drop", "slow")
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# GSM 03.38 basic set plus the extension table (extension characters count twice).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")

ERROR_MESSAGES: Mapping[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    30003: "Unreachable destination handset",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


@dataclass(frozen=True)
class RequestRecord:
    """One request the stub answered: ``time`` is ``time.monotonic()`` at arrival; ``fault`` the injected kind."""

    method: str
    path: str
    time: float
    status: int
    fault: str | None = None


@dataclass(frozen=True)
class CallbackRecord:
    """One status callback the stub delivered (``status`` is the receiver's HTTP status, 0 if unreachable)."""

    url: str
    params: dict[str, str]
    signature: str
    status: int


def segment_count(body: str) -> int:
    """Number of SMS parts for ``body``: GSM-7 160/153 characters, otherwise UCS-2 70/67."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENDED for char in body):
        length = sum(2 if char in _GSM7_EXTENDED else 1 for char in body)
        single, part = 160, 153
    else:
        length = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    if length <= single:
        return 1
    return -(-length // part)


def _rfc2822(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _parse_date_filter(text: str) -> datetime:
    """Twilio accepts ``YYYY-MM-DD`` or an ISO 8601 datetime (the Python client sends ``...Z``)."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class TwilioStub:
    """A Twilio-compatible Messages API on ``127.0.0.1`` (a free port), served from a background thread.

    Parameters
    ----------
    account_sid, auth_token : str
        The credentials the stub accepts (HTTP Basic) and signs callbacks with.
    opted_out : iterable of str
        E.164 numbers that answer 21610 (unsubscribed), on SMS and WhatsApp.
    not_mobile : iterable of str
        E.164 numbers that answer 21614 (landline).
    whatsapp_open : iterable of str
        E.164 numbers whose WhatsApp 24-hour session window is open; free text to any other is refused (63016).
    undelivered : iterable of str
        E.164 numbers whose status callbacks end in ``undelivered`` with error 30003.
    window_errors_async : bool
        Report 63016 the way Twilio does (accepted, then ``failed`` with 63016) rather than as a 400.
    seed : int
        Seed of the fault draw; the same seed and the same sequence of creates give the same faults.
    fault_rate : float
        Fraction (0..1) of message creates that get a fault drawn from ``fault_kinds``.
    fault_kinds : iterable of str
        Which of :data:`FAULT_KINDS` the random draw picks from.
    retry_after : int
        Seconds in the ``Retry-After`` header of a 429.
    hang_seconds, slow_seconds : float
        How long ``"hang"`` and ``"slow"`` faults wait before answering (``stop()`` cuts a hang short).
    duplicate_callbacks, reverse_callbacks : bool
        Deliver each status callback twice; deliver a message's callbacks in reverse order.
    clock : callable returning an aware datetime, optional
        The stub's notion of "now" for ``date_created``/``date_sent`` (default: the system clock, UTC).
    """

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "stub-auth-token",  # noqa: S107 - the stub's own fake credential
        *,
        opted_out: Iterable[str] = (),
        not_mobile: Iterable[str] = (),
        whatsapp_open: Iterable[str] = (),
        undelivered: Iterable[str] = (),
        window_errors_async: bool = False,
        seed: int = 0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] = ("429", "500"),
        retry_after: int = 1,
        hang_seconds: float = 5.0,
        slow_seconds: float = 0.2,
        duplicate_callbacks: bool = False,
        reverse_callbacks: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        kinds = tuple(fault_kinds)
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; use some of {FAULT_KINDS}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, got {fault_rate}")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out = set(opted_out)
        self.not_mobile = set(not_mobile)
        self.whatsapp_open = set(whatsapp_open)
        self.undelivered = set(undelivered)
        self.window_errors_async = window_errors_async
        self.fault_rate = fault_rate
        self.fault_kinds = kinds
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self.duplicate_callbacks = duplicate_callbacks
        self.reverse_callbacks = reverse_callbacks
        self.clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not security
        self._lock = threading.Lock()
        self._callbacks_done = threading.Condition(self._lock)
        self._messages: list[dict[str, Any]] = []
        self._requests: list[RequestRecord] = []
        self._callbacks: list[CallbackRecord] = []
        self._scripted: list[str] = []
        self._stopping = threading.Event()
        self._callback_queue: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> TwilioStub:
        """Bind a free loopback port and serve in background threads; return ``self``."""
        if self._server is not None:
            return self
        handler = type("_Handler", (_Handler,), {"stub": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="twilio-stub", daemon=True
            ),
            threading.Thread(target=self._deliver_callbacks, name="twilio-stub-callbacks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut pending hangs short and stop delivering callbacks."""
        if self._server is None:
            return
        self._stopping.set()
        self._callback_queue.put(None)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> TwilioStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL to route the Twilio client to."""
        if self._server is None:
            raise RuntimeError("TwilioStub is not started: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what happened --------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Copies of every accepted message, Twilio's fields plus a few kept for assertions.

        The extras are ``content_sid``, ``content_variables``, ``status_callback``, ``validity_period``,
        ``created_at`` (the stub clock) and ``created_monotonic``.
        """
        with self._lock:
            return [dict(message) for message in self._messages]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or dropped), in arrival order."""
        with self._lock:
            return sorted(self._requests, key=lambda record: record.time)

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every status callback delivered, in delivery order."""
        with self._lock:
            return list(self._callbacks)

    def wait_for_callbacks(self, count: int, timeout: float = 5.0) -> list[CallbackRecord]:
        """Block until ``count`` callbacks were delivered (or ``timeout`` seconds); return them all."""
        with self._callbacks_done:
            self._callbacks_done.wait_for(lambda: len(self._callbacks) >= count, timeout=timeout)
            return list(self._callbacks)

    def fail_next(self, kind: str, n: int = 1) -> None:
        """Script the next ``n`` message creates to get fault ``kind`` (before any random draw)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        with self._lock:
            self._scripted.extend([kind] * n)

    # -- internals used by the handler ----------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self._scripted:
                return self._scripted.pop(0)
            # Draw both numbers every time so the sequence depends only on the seed and the create count.
            roll, pick = self._rng.random(), self._rng.randrange(max(len(self.fault_kinds), 1))
            if self.fault_kinds and roll < self.fault_rate:
                return self.fault_kinds[pick]
            return None

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _create(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        to = form.get("To", "")
        sender = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        content_sid = form.get("ContentSid", "")
        if not to:
            return 400, self._error(400, 21604)
        if not sender and not service:
            return 400, self._error(400, 21603)
        if not body and not content_sid and not form.get("MediaUrl"):
            return 400, self._error(400, 21602)
        whatsapp = to.startswith("whatsapp:")
        number = to.removeprefix("whatsapp:")
        if not _E164.match(number):
            return 400, self._error(400, 21211)
        if sender and sender.startswith("whatsapp:") != whatsapp:
            return 400, self._error(400, 21910)
        if number in self.opted_out:
            return 400, self._error(400, 21610)
        if not whatsapp and number in self.not_mobile:
            return 400, self._error(400, 21614)
        window_closed = whatsapp and not content_sid and number not in self.whatsapp_open
        if window_closed and not self.window_errors_async:
            return 400, self._error(400, 63016)
        now = self.clock()
        sid = "SM" + uuid.uuid4().hex
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        validity = form.get("ValidityPeriod")
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": str(segment_count(body)) if body else "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": path.replace(".json", "/Media.json")},
            "to": to,
            "uri": path,
            # Not in Twilio's JSON; kept for assertions.
            "content_sid": content_sid or None,
            "content_variables": form.get("ContentVariables"),
            "status_callback": form.get("StatusCallback"),
            "validity_period": int(validity) if validity else None,
            "created_at": now,
            "created_monotonic": time.monotonic(),
        }
        statuses: list[tuple[str, int | None]]
        if window_closed:
            statuses = [("failed", 63016)]
        elif number in self.undelivered:
            statuses = [("sent", None), ("undelivered", 30003)]
        else:
            statuses = [("sent", None), ("delivered", None)]
        answer = _public(message)  # as created: callbacks move the stored status on
        with self._lock:
            self._messages.append(message)
        callback = form.get("StatusCallback")
        if callback:
            self._schedule_callbacks(callback, message, statuses)
        else:
            self._set_status(sid, *statuses[-1])
        return 201, answer

    def _set_status(self, sid: str, status: str, code: int | None) -> None:
        with self._lock:
            for message in self._messages:
                if message["sid"] == sid:
                    message["status"] = status
                    message["error_code"] = code
                    message["error_message"] = ERROR_MESSAGES.get(code) if code else None

    def _schedule_callbacks(self, url: str, message: Mapping[str, Any], statuses: list[tuple[str, int | None]]) -> None:
        ordered = list(reversed(statuses)) if self.reverse_callbacks else statuses
        for status, code in ordered:
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "MessageSid": message["sid"],
                "MessageStatus": status,
                "SmsSid": message["sid"],
                "SmsStatus": status,
                "To": message["to"],
            }
            if message.get("from"):
                params["From"] = message["from"]
            if message.get("messaging_service_sid"):
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if code is not None:
                params["ErrorCode"] = str(code)
            for _ in range(2 if self.duplicate_callbacks else 1):
                self._callback_queue.put((url, params))
        self._set_status(message["sid"], *statuses[-1])

    def _deliver_callbacks(self) -> None:
        validator = RequestValidator(self.auth_token)
        while True:
            item = self._callback_queue.get()
            if item is None:
                return
            url, params = item
            signature = validator.compute_signature(url, params)
            request = urllib.request.Request(  # noqa: S310 - URL given by the test, loopback
                url,
                data=urllib.parse.urlencode(params).encode(),
                headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, ValueError):
                status = 0
            with self._callbacks_done:
                self._callbacks.append(CallbackRecord(url, dict(params), signature, status))
                self._callbacks_done.notify_all()

    def _fetch(self, sid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            for message in self._messages:
                if message["sid"] == sid:
                    return 200, _public(message)
        return 404, self._error(404, 20404)

    def _list(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            after = _parse_date_filter(query["DateSent>"]) if "DateSent>" in query else None
            before = _parse_date_filter(query["DateSent<"]) if "DateSent<" in query else None
            on = _parse_date_filter(query["DateSent"]).date() if "DateSent" in query else None
            page_size = min(max(int(query.get("PageSize", "50")), 1), 1000)
            page = max(int(query.get("Page", "0")), 0)
        except ValueError:
            return 400, self._error(400, 20001, "Invalid filter or paging parameter")
        with self._lock:
            found = [
                message
                for message in reversed(self._messages)  # Twilio lists newest first
                if ("To" not in query or message["to"] == query["To"])
                and ("From" not in query or message["from"] == query["From"])
                and (after is None or message["created_at"] >= after)
                and (before is None or message["created_at"] <= before)
                and (on is None or message["created_at"].astimezone(UTC).date() == on)
            ]
            chosen = [_public(message) for message in found[page * page_size : (page + 1) * page_size]]
        filters = {
            key: value for key, value in query.items() if key in {"To", "From", "DateSent", "DateSent>", "DateSent<"}
        }
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int) -> str:
            return base + "?" + urllib.parse.urlencode({**filters, "PageSize": page_size, "Page": number})

        has_next = (page + 1) * page_size < len(found)
        return 200, {
            "end": page * page_size + max(len(chosen) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": chosen,
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": page_uri(page),
        }

    @staticmethod
    def _error(status: int, code: int, message: str | None = None) -> dict[str, Any]:
        return {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.account_sid and password == self.auth_token


def _public(message: Mapping[str, Any]) -> dict[str, Any]:
    hidden = {"content_sid", "content_variables", "status_callback", "validity_period", "created_at"}
    return {key: value for key, value in message.items() if key not in hidden and key != "created_monotonic"}


class _Handler(http.server.BaseHTTPRequestHandler):
    stub: TwilioStub
    server_version = "TwilioStub/1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        arrived = time.monotonic()
        stub = self.stub
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        match = _MESSAGES_PATH.match(split.path)
        fault: str | None = None
        headers: dict[str, str] = {}
        if not stub._authorised(self.headers.get("Authorization")):
            status, payload = 401, stub._error(401, 20003)
            payload["detail"] = "Your AccountSid or AuthToken was incorrect."
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        elif match is None or match["account"] != stub.account_sid:
            status, payload = 404, stub._error(404, 20404)
        elif method == "GET":
            status, payload = stub._fetch(match["sid"]) if match["sid"] else stub._list(query)
        elif match["sid"]:
            status, payload = 405, stub._error(405, 20004, "Method not allowed")
        else:
            fault = stub._draw_fault()
            if fault == "429":
                status, payload = 429, stub._error(429, 20429)
                headers["Retry-After"] = str(stub.retry_after)
            elif fault == "500":
                status, payload = 500, stub._error(500, 20500)
            else:
                status, payload = stub._create(form)
                if status == 201 and fault == "drop":
                    stub._record(RequestRecord(method, self.path, arrived, 0, fault))
                    self.close_connection = True
                    return
                if status == 201 and fault in {"hang", "slow"}:
                    stub._wait(stub.hang_seconds if fault == "hang" else stub.slow_seconds)
        stub._record(RequestRecord(method, self.path, arrived, status, fault))
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a "hang" past its timeout): exactly the ambiguous case
