"""A loopback server that speaks enough of Twilio's Messages API for the official ``twilio`` client.

It is the fake network for tests and benchmarks: it accepts every well-formed number, including ews's
fictional range (``+62899900xxxxxx``), and never forwards anything. What it imitates:

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
  reversed, as real callbacks can be.

Faults, all reproducible from ``seed`` (the same seed and the same sequence of requests give the same faults):

- on message create, drawn with probability ``fault_rate`` from ``fault_kinds`` (or per kind from ``fault_mix``)
  or scripted with ``fail_next(kind, n)``:

  - ``"429"`` (with ``Retry-After`` and code 20429) and ``"500"``: refused, nothing created;
  - ``"hang"``: the message is created at once, the answer comes after ``hang_seconds`` (the ambiguous case a
    dispatcher must reconcile);
  - ``"late"``: the request is held and the message is created only *after* the hold, ``late_seconds`` after the
    request arrived (then answered): a create the provider completes after the client timed out. A
    reconciliation run right after the client's timeout finds nothing; one run after the hold finds the
    message. The message is created whether or not the client still waits, and even while the server is
    paused (:meth:`~TwilioStub.pause`); :meth:`~TwilioStub.stop` completes pending ones at once;
  - ``"drop"``: created, then the connection is closed without an answer;
  - ``"slow"``: created and answered after ``slow_seconds``;

- on the list call (``GET .../Messages.json``, each page), drawn with probability ``list_fault_rate`` from
  ``list_fault_kinds`` or scripted with ``fail_next_list(kind, n)``: ``"429"`` (with ``Retry-After``, code 20429)
  and ``"500"`` (code 20500). twilio 9 does **not** raise :class:`~twilio.base.exceptions.TwilioRestException`
  for these: ``client.messages.list``/``stream``/``page`` raise the base class
  :class:`~twilio.base.exceptions.TwilioException` with ``args == ("Unable to fetch page", <Response>)``
  (``twilio.base.page.Page.process_response``; the status is ``exc.args[1].status_code``), for the first page
  and for every next page alike, and for a 401 on a list call too, so a caller that catches only
  ``TwilioRestException`` crashes. (A failing ``create`` or ``fetch`` does raise ``TwilioRestException``, with
  ``status`` and ``code``.)
- every request is answered ``latency`` seconds late (e.g. 0.005 for a provider 5 ms away);
- :meth:`~TwilioStub.pause` makes the server unreachable for a while, then it comes back on the same port:
  ``mode="refuse"`` closes the listening socket (clients get "connection refused", never ambiguous) and
  ``mode="reset"`` keeps it but resets every connection as soon as it is accepted (clients get "connection reset";
  for a create the client cannot tell whether the request was read). Requests already being answered finish.

Every accepted message is in :attr:`TwilioStub.messages` and every request in :attr:`TwilioStub.requests`
(arrival time on ``time.monotonic()``, a create's ``To`` and ``Body``), so tests assert "exactly one message per
recipient" and retry gaps on the stub's own clock rather than the test's. :meth:`TwilioStub.sent_counts` and
:meth:`TwilioStub.count` answer "messages per (to, body)" from an index kept as messages are created, cheap for
thousands of messages.
"""

from __future__ import annotations

import base64
import binascii
import errno
import http.server
import json
import queue
import random
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
FAULT_KINDS = ("429", "500", "hang", "drop", "slow", "late")
LIST_FAULT_KINDS = ("429", "500")
DOWN_MODES = ("refuse", "reset")
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# GSM 03.38 basic set plus the extension table (extension characters count twice).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")
# How long pause()'s end may wait for the port to be free again (a client socket may hold it for a moment).
_REBIND_SECONDS = 30.0

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
    """One request the stub answered (or dropped, or reset).

    ``time`` is ``time.monotonic()`` at arrival; ``fault`` the injected kind (``"reset"`` for a connection reset
    by :meth:`TwilioStub.pause`, whose ``method`` and ``path`` are then empty: nothing was read); ``to`` and
    ``body`` the ``To`` and ``Body`` of a message create (``None`` otherwise); ``retry_after`` the seconds in the
    ``Retry-After`` header of a 429; ``answered`` the ``time.monotonic()`` at which the answer was written (or
    the connection dropped). Records are appended when the answer is given, so a hang or a late create is
    appended after requests that arrived later (:attr:`TwilioStub.requests` sorts them by arrival).
    """

    method: str
    path: str
    time: float
    status: int
    fault: str | None = None
    to: str | None = None
    body: str | None = None
    retry_after: int | None = None
    answered: float | None = None


@dataclass(frozen=True)
class CallbackRecord:
    """One status callback the stub delivered (``status`` is the receiver's HTTP status, 0 if unreachable)."""

    url: str
    params: dict[str, str]
    signature: str
    status: int


@dataclass(frozen=True)
class Outage:
    """One :meth:`TwilioStub.pause`: from ``start`` to ``end`` on ``time.monotonic()`` (``None`` while down)."""

    start: float
    end: float | None
    mode: str


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
        Seed of the fault draws; the same seed and the same sequence of requests give the same faults.
    fault_rate : float
        Fraction (0..1) of message creates that get a fault drawn (uniformly) from ``fault_kinds``.
    fault_kinds : iterable of str
        Which of :data:`FAULT_KINDS` the random draw picks from.
    fault_mix : mapping of str to float, optional
        Probability (0..1, summing to at most 1) of each of :data:`FAULT_KINDS` per message create, e.g.
        ``{"429": 0.10, "500": 0.05, "hang": 0.05, "late": 0.02}``; replaces ``fault_rate`` and ``fault_kinds``.
    retry_after : int
        Seconds in the ``Retry-After`` header of a 429 (creates and list calls).
    hang_seconds, slow_seconds : float
        How long ``"hang"`` and ``"slow"`` faults wait before answering (``stop()`` cuts a hang short).
    late_seconds : float or (float, float)
        Seconds after its arrival that a ``"late"`` create is created and answered; a pair draws it uniformly
        from that range (from the seeded fault generator).
    list_fault_rate : float
        Fraction (0..1) of list calls (each page) that get a fault drawn from ``list_fault_kinds``.
    list_fault_kinds : iterable of str
        Which of :data:`LIST_FAULT_KINDS` the list draw picks from.
    latency : float
        Seconds added before every answer (all requests, errors included).
    duplicate_callbacks, reverse_callbacks : bool
        Deliver each status callback twice; deliver a message's callbacks in reverse order.
    clock : callable returning an aware datetime, optional
        The stub's notion of "now" for ``date_created``/``date_sent`` (default: the system clock, UTC).

    Raises
    ------
    ValueError
        An unknown fault kind, or a rate or probability outside 0..1.
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
        fault_mix: Mapping[str, float] | None = None,
        retry_after: int = 1,
        hang_seconds: float = 5.0,
        slow_seconds: float = 0.2,
        late_seconds: float | tuple[float, float] = 1.75,
        list_fault_rate: float = 0.0,
        list_fault_kinds: Iterable[str] = LIST_FAULT_KINDS,
        latency: float = 0.0,
        duplicate_callbacks: bool = False,
        reverse_callbacks: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        kinds = tuple(fault_kinds)
        mix = dict(fault_mix or {})
        list_kinds = tuple(list_fault_kinds)
        unknown = sorted((set(kinds) | set(mix)) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; use some of {FAULT_KINDS}")
        unknown = sorted(set(list_kinds) - set(LIST_FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown list fault kinds {unknown}; use some of {LIST_FAULT_KINDS}")
        for name, rate in (("fault_rate", fault_rate), ("list_fault_rate", list_fault_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {rate}")
        if any(not 0.0 <= p <= 1.0 for p in mix.values()) or sum(mix.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault_mix probabilities must be within 0..1 and sum to at most 1, got {mix}")
        late = (late_seconds, late_seconds) if isinstance(late_seconds, int | float) else tuple(late_seconds)
        if len(late) != 2 or not 0.0 <= late[0] <= late[1]:
            raise ValueError(f"late_seconds must be seconds >= 0 or a (low, high) range, got {late_seconds}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.opted_out = set(opted_out)
        self.not_mobile = set(not_mobile)
        self.whatsapp_open = set(whatsapp_open)
        self.undelivered = set(undelivered)
        self.window_errors_async = window_errors_async
        self.fault_rate = fault_rate
        self.fault_kinds = kinds
        self.fault_mix = mix
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self.late_seconds: tuple[float, float] = (float(late[0]), float(late[1]))
        self.list_fault_rate = list_fault_rate
        self.list_fault_kinds = list_kinds
        self.latency = latency
        self.duplicate_callbacks = duplicate_callbacks
        self.reverse_callbacks = reverse_callbacks
        self.clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not security
        # A generator of its own, so list calls do not shift the create faults of a seed (and back).
        self._list_rng = random.Random(f"{seed}/list")  # noqa: S311
        self._lock = threading.Lock()
        self._callbacks_done = threading.Condition(self._lock)
        self._late_done = threading.Condition(self._lock)
        self._messages: list[dict[str, Any]] = []
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._by_to: dict[str, list[dict[str, Any]]] = {}
        self._per_key: Counter[tuple[str, str]] = Counter()
        self._pending_late: dict[int, tuple[dict[str, Any], list[tuple[str, int | None]], str | None]] = {}
        self._late_tokens = 0
        self._requests: list[RequestRecord] = []
        self._callbacks: list[CallbackRecord] = []
        self._scripted: list[str] = []
        self._scripted_list: list[str] = []
        self._stopping = threading.Event()
        self._callback_queue: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        # Lifecycle (start, stop, pause, resume) has a lock of its own: handlers never take it.
        self._life = threading.RLock()
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._callback_thread: threading.Thread | None = None
        self._port: int | None = None
        self._down: str | None = None
        self._outages: list[Outage] = []
        self._resume_timer: threading.Thread | None = None
        self._resume_cancel = threading.Event()  # a new one per pause(): an old timer never resumes a new pause

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> TwilioStub:
        """Bind a free loopback port and serve in background threads; return ``self``."""
        with self._life:
            if self._port is not None:
                return self
            self._stopping.clear()
            self._listen(0)
            self._callback_thread = threading.Thread(
                target=self._deliver_callbacks, name="twilio-stub-callbacks", daemon=True
            )
            self._callback_thread.start()
            return self

    def stop(self) -> None:
        """Stop serving, cut pending hangs short, complete pending late creates and stop delivering callbacks."""
        with self._life:
            if self._port is None:
                return
            self._stopping.set()
            self._resume_cancel.set()
            self._close_listener()
            with self._lock:
                pending = sorted(self._pending_late)
            for token in pending:
                self._complete_late(token)
            self._callback_queue.put(None)
            if self._callback_thread is not None:
                self._callback_thread.join(timeout=5)
            timer, self._resume_timer = self._resume_timer, None
            self._port = None
            self._down = None
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)

    def __enter__(self) -> TwilioStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL to route the Twilio client to (the same across pauses)."""
        if self._port is None:
            raise RuntimeError("TwilioStub is not started: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._port}"

    def airflow_connection(self, sms_from: str) -> str:
        """The ``twilio_default`` Airflow Connection routing to this stub, as ``AIRFLOW_CONN_TWILIO_DEFAULT`` (JSON)."""
        extra = {"base_url": self.url, "sms_from": sms_from}
        return json.dumps(
            {"conn_type": "generic", "login": self.account_sid, "password": self.auth_token, "extra": extra}
        )

    def pause(self, seconds: float | None = None, *, mode: str = "refuse") -> None:
        """Make the server unreachable, for ``seconds`` (then it comes back on the same port) or until resumed.

        Returns at once; the server comes back in a background thread.

        Parameters
        ----------
        seconds : float, optional
            How long it stays unreachable; ``None``: until :meth:`resume`.
        mode : {"refuse", "reset"}
            ``"refuse"`` closes the listening socket (connection refused); ``"reset"`` accepts connections and
            resets them at once (connection reset, recorded as requests with fault ``"reset"``).

        Raises
        ------
        ValueError
            An unknown ``mode`` or a negative ``seconds``.
        RuntimeError
            The stub is not started, or already paused.
        """
        if mode not in DOWN_MODES:
            raise ValueError(f"unknown pause mode {mode!r}; use one of {DOWN_MODES}")
        if seconds is not None and seconds < 0:
            raise ValueError(f"pause seconds must be >= 0, got {seconds}")
        with self._life:
            if self._port is None:
                raise RuntimeError("TwilioStub is not started: nothing to pause")
            if self._down is not None:
                raise RuntimeError("TwilioStub is already paused: resume() first")
            self._down = mode
            with self._lock:
                self._outages.append(Outage(time.monotonic(), None, mode))
            if mode == "refuse":
                self._close_listener()
            self._resume_cancel = threading.Event()
            if seconds is not None:
                self._resume_timer = threading.Thread(
                    target=self._resume_after,
                    args=(seconds, self._resume_cancel),
                    name="twilio-stub-resume",
                    daemon=True,
                )
                self._resume_timer.start()

    def resume(self) -> None:
        """Serve again on the same port after :meth:`pause` (a no-op if not paused).

        Raises
        ------
        OSError
            The port stayed taken by another socket for 30 s.
        """
        with self._life:
            if self._down is None or self._port is None:
                return
            self._resume_cancel.set()
            if self._down == "refuse":
                self._listen(self._port)
            self._down = None
            with self._lock:
                last = self._outages[-1]
                self._outages[-1] = Outage(last.start, time.monotonic(), last.mode)

    @property
    def down(self) -> bool:
        """Whether the stub is paused now."""
        return self._down is not None

    @property
    def outages(self) -> list[Outage]:
        """Every :meth:`pause`, in order (the current one with ``end=None``)."""
        with self._lock:
            return list(self._outages)

    def _resume_after(self, seconds: float, cancel: threading.Event) -> None:
        if not cancel.wait(seconds):
            with self._life:
                if not cancel.is_set():
                    self.resume()

    def _listen(self, port: int) -> None:
        handler = type("_Handler", (_Handler,), {"stub": self})
        deadline = time.monotonic() + _REBIND_SECONDS
        while True:
            try:
                server = _Server(("127.0.0.1", port), handler, stub=self)
                break
            except OSError as exc:
                # Coming back on the port it had: a client socket may hold that port number for a moment.
                if port == 0 or exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.daemon_threads = True
        self._server = server
        self._port = int(server.server_address[1])
        self._serving = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="twilio-stub", daemon=True
        )
        self._serving.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._serving is not None:
            self._serving.join(timeout=5)
            self._serving = None

    # -- what happened --------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Copies of every accepted message, Twilio's fields plus a few kept for assertions.

        The extras are ``content_sid``, ``content_variables``, ``status_callback``, ``validity_period``,
        ``created_at`` (the stub clock), ``created_monotonic`` and ``arrived_monotonic`` (when its create request
        arrived: earlier than ``created_monotonic`` for a ``"late"`` create).
        """
        with self._lock:
            return [dict(message) for message in self._messages]

    def sent_counts(self) -> Counter[tuple[str, str]]:
        """Accepted messages per ``(to, body)`` (a copy of an index kept as messages are created)."""
        with self._lock:
            return Counter(self._per_key)

    def count(self, to: str, body: str | None = None) -> int:
        """Accepted messages to ``to`` (with exactly this ``body`` if given)."""
        with self._lock:
            if body is not None:
                return self._per_key.get((to, body), 0)
            return len(self._by_to.get(to, ()))

    def messages_to(self, to: str) -> list[dict[str, Any]]:
        """Copies of the accepted messages to ``to``, oldest first."""
        with self._lock:
            return [dict(message) for message in self._by_to.get(to, ())]

    @property
    def pending_late(self) -> int:
        """``"late"`` creates held now, whose message is not created yet."""
        with self._lock:
            return len(self._pending_late)

    def wait_for_late(self, timeout: float = 10.0) -> bool:
        """Block until no ``"late"`` create is pending (or ``timeout`` seconds); return whether none is."""
        with self._late_done:
            return self._late_done.wait_for(lambda: not self._pending_late, timeout=timeout)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or dropped, or reset), in arrival order."""
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

    def fail_next_list(self, kind: str, n: int = 1) -> None:
        """Script the next ``n`` list calls (pages) to get fault ``kind`` (``"429"`` or ``"500"``)."""
        if kind not in LIST_FAULT_KINDS:
            raise ValueError(f"unknown list fault kind {kind!r}; use one of {LIST_FAULT_KINDS}")
        with self._lock:
            self._scripted_list.extend([kind] * n)

    # -- internals used by the handler ----------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _draw_fault(self) -> tuple[str | None, float]:
        """The fault of the next create and, for ``"late"``, its hold in seconds."""
        with self._lock:
            if self._scripted:
                kind: str | None = self._scripted.pop(0)
            else:
                # Draw both numbers every time so the sequence depends only on the seed and the create count.
                roll, pick = self._rng.random(), self._rng.randrange(max(len(self.fault_kinds), 1))
                kind = None
                if self.fault_mix:
                    total = 0.0
                    for name, probability in self.fault_mix.items():
                        total += probability
                        if roll < total:
                            kind = name
                            break
                elif self.fault_kinds and roll < self.fault_rate:
                    kind = self.fault_kinds[pick]
            hold = 0.0
            if kind == "late":
                low, high = self.late_seconds
                hold = low if low == high else self._rng.uniform(low, high)
            return kind, hold

    def _draw_list_fault(self) -> str | None:
        with self._lock:
            if self._scripted_list:
                return self._scripted_list.pop(0)
            roll, pick = self._list_rng.random(), self._list_rng.randrange(max(len(self.list_fault_kinds), 1))
            if self.list_fault_kinds and roll < self.list_fault_rate:
                return self.list_fault_kinds[pick]
            return None

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _prepare(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any], list[tuple[str, int | None]], str | None]:
        """Validate a create: ``(201, message, statuses, callback)`` or ``(4xx, error, [], None)``."""
        to = form.get("To", "")
        sender = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        content_sid = form.get("ContentSid", "")
        if not to:
            return 400, self._error(400, 21604), [], None
        if not sender and not service:
            return 400, self._error(400, 21603), [], None
        if not body and not content_sid and not form.get("MediaUrl"):
            return 400, self._error(400, 21602), [], None
        whatsapp = to.startswith("whatsapp:")
        number = to.removeprefix("whatsapp:")
        if not _E164.match(number):
            return 400, self._error(400, 21211), [], None
        if sender and sender.startswith("whatsapp:") != whatsapp:
            return 400, self._error(400, 21910), [], None
        if number in self.opted_out:
            return 400, self._error(400, 21610), [], None
        if not whatsapp and number in self.not_mobile:
            return 400, self._error(400, 21614), [], None
        window_closed = whatsapp and not content_sid and number not in self.whatsapp_open
        if window_closed and not self.window_errors_async:
            return 400, self._error(400, 63016), [], None
        sid = "SM" + uuid.uuid4().hex
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        validity = form.get("ValidityPeriod")
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": None,
            "date_sent": None,
            "date_updated": None,
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
            "created_at": None,
            "created_monotonic": None,
            "arrived_monotonic": None,
        }
        statuses: list[tuple[str, int | None]]
        if window_closed:
            statuses = [("failed", 63016)]
        elif number in self.undelivered:
            statuses = [("sent", None), ("undelivered", 30003)]
        else:
            statuses = [("sent", None), ("delivered", None)]
        return 201, message, statuses, form.get("StatusCallback") or None

    def _commit(
        self, message: dict[str, Any], statuses: list[tuple[str, int | None]], callback: str | None
    ) -> dict[str, Any]:
        """Record a prepared message as created now; return its answer (as created: callbacks move it on)."""
        now = self.clock()
        message["date_created"] = message["date_sent"] = message["date_updated"] = _rfc2822(now)
        message["created_at"] = now
        message["created_monotonic"] = time.monotonic()
        answer = _public(message)
        with self._lock:
            self._messages.append(message)
            self._by_sid[message["sid"]] = message
            self._by_to.setdefault(message["to"], []).append(message)
            self._per_key[(message["to"], message["body"])] += 1
        if callback:
            self._schedule_callbacks(callback, message, statuses)
        else:
            self._set_status(message["sid"], *statuses[-1])
        return answer

    def _create(self, form: Mapping[str, str], arrived: float | None = None) -> tuple[int, dict[str, Any]]:
        status, payload, statuses, callback = self._prepare(form)
        if status != 201:
            return status, payload
        payload["arrived_monotonic"] = time.monotonic() if arrived is None else arrived
        return 201, self._commit(payload, statuses, callback)

    def _hold_late(self, form: Mapping[str, str], arrived: float, hold: float) -> tuple[int, dict[str, Any]]:
        """A ``"late"`` create: hold until ``arrived + hold``, then create the message and answer."""
        status, payload, statuses, callback = self._prepare(form)
        if status != 201:
            return status, payload
        payload["arrived_monotonic"] = arrived
        with self._lock:
            self._late_tokens += 1
            token = self._late_tokens
            self._pending_late[token] = (payload, statuses, callback)
        self._wait(max(arrived + hold - time.monotonic(), 0.0))
        answer = self._complete_late(token)
        return 201, answer if answer is not None else _public(payload)  # None: stop() created it

    def _complete_late(self, token: int) -> dict[str, Any] | None:
        """Create a held message now unless that was done already; return its answer if created here."""
        with self._lock:
            pending = self._pending_late.pop(token, None)
        answer = self._commit(*pending) if pending is not None else None
        with self._late_done:
            self._late_done.notify_all()
        return answer

    def _set_status(self, sid: str, status: str, code: int | None) -> None:
        with self._lock:
            message = self._by_sid.get(sid)
            if message is not None:
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
            message = self._by_sid.get(sid)
            if message is not None:
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
            candidates = self._by_to.get(query["To"], []) if "To" in query else self._messages
            found = [
                message
                for message in reversed(candidates)  # Twilio lists newest first
                if ("From" not in query or message["from"] == query["From"])
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


_HIDDEN = frozenset(
    {
        "content_sid", "content_variables", "status_callback", "validity_period", "created_at", "created_monotonic",
        "arrived_monotonic",
    }
)  # fmt: skip


def _public(message: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in _HIDDEN}


class _Server(http.server.ThreadingHTTPServer):
    """The listening socket; while the stub is paused in ``"reset"`` mode it resets every connection."""

    def __init__(
        self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler], *, stub: TwilioStub
    ) -> None:
        self.stub = stub
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.stub._down != "reset":
            return True
        now = time.monotonic()
        self.stub._record(RequestRecord("", "", now, 0, "reset", answered=now))
        # SO_LINGER on, 0 s: close() sends RST instead of FIN, whatever the client already sent.
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.close()
        return False


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
        creating = False
        if not stub._authorised(self.headers.get("Authorization")):
            status, payload = 401, stub._error(401, 20003)
            payload["detail"] = "Your AccountSid or AuthToken was incorrect."
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        elif match is None or match["account"] != stub.account_sid:
            status, payload = 404, stub._error(404, 20404)
        elif method == "GET" and match["sid"]:
            status, payload = stub._fetch(match["sid"])
        elif method == "GET":
            fault = stub._draw_list_fault()
            status, payload = self._refusal(fault, headers) if fault else stub._list(query)
        elif match["sid"]:
            status, payload = 405, stub._error(405, 20004, "Method not allowed")
        else:
            creating = True
            fault, hold = stub._draw_fault()
            if fault in {"429", "500"}:
                status, payload = self._refusal(fault, headers)
            elif fault == "late":
                status, payload = stub._hold_late(form, arrived, hold)
            else:
                status, payload = stub._create(form, arrived)
                if status == 201 and fault == "drop":
                    stub._record(self._log(method, arrived, 0, fault, form if creating else None, headers))
                    self.close_connection = True
                    return
                if status == 201 and fault in {"hang", "slow"}:
                    stub._wait(stub.hang_seconds if fault == "hang" else stub.slow_seconds)
        if stub.latency:
            stub._wait(stub.latency)
        stub._record(self._log(method, arrived, status, fault, form if creating else None, headers))
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

    def _refusal(self, fault: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if fault == "429":
            headers["Retry-After"] = str(self.stub.retry_after)
            return 429, self.stub._error(429, 20429)
        return 500, self.stub._error(500, 20500)

    def _log(
        self, method: str, arrived: float, status: int, fault: str | None, form: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> RequestRecord:  # fmt: skip
        retry_after = int(headers["Retry-After"]) if "Retry-After" in headers else None
        to, body = (form.get("To"), form.get("Body")) if form is not None else (None, None)
        return RequestRecord(method, self.path, arrived, status, fault, to, body, retry_after, time.monotonic())
