"""Twilio SMS and WhatsApp channels (EDGE OUT), with error classes a dispatcher can act on.

The official client is used unchanged except for its HTTP layer: :class:`RoutedHttpClient` adds a timeout (the
client has none by default), can route every request to another base URL (a loopback stub in tests, a proxy),
keeps the last response's headers per thread (``TwilioRestException`` does not carry ``Retry-After``) and logs
method and path only, with the account SID redacted, instead of the client's own URL, query and header logs.

Outcomes of :meth:`TwilioSms.send` / :meth:`TwilioWhatsApp.send`:

- accepted by Twilio -> ``SendResult("sent", provider_id="SM…", detail=<Twilio status>)``;
- the warning already expired -> ``SendResult("expired")`` without calling Twilio;
- a number in ews's fictional range and a client that would reach the real Twilio -> ``SendResult("failed")``;
- a permanent, per-recipient refusal (21211, 21610, 63016, …) -> ``SendResult("failed", detail="twilio CODE: …")``;
- 429 -> :class:`RateLimited` (back off ``retry_after`` seconds); 5xx, connection errors, timeouts ->
  :class:`TransientSendError`, whose ``ambiguous`` flag says Twilio may have created the message anyway (read
  timeout, dropped connection, gateway errors): list Twilio's messages to the number before resending;
- the account or sender is wrong (20003, 21212, 21606, …) -> :class:`TwilioConfigError`: no recipient is at fault.

Neither the phone number, nor the account SID, nor the auth token appears in a log record, an exception message
or ``SendResult.detail``: numbers are shown masked, errors carry codes and recipient ids.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ews.channels.base import SendResult, TransientChannelError, at_the_wire
from ews.contacts import is_fictional, mask_phone
from ews.errors import ConfigError, EwsError
from ews.types import RenderedMessage

logger = logging.getLogger(__name__)
_http_logger = logging.getLogger(__name__ + ".http")

MIN_VALIDITY_SECONDS = 1
MAX_VALIDITY_SECONDS = 14_400  # Twilio's documented ceiling when ValidityPeriod was introduced (4 h)
DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no usable Retry-After
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")

PERMANENT_CODES: Mapping[int, str] = {
    21211: "invalid 'To' number",
    21408: "sending to this region is not enabled for the account (geo permissions)",
    21610: "recipient has opted out (unsubscribed)",
    21612: "the 'To' number cannot be reached from this sender",
    21614: "the 'To' number is not a mobile number",
    21617: "message body exceeds 1600 characters",
    21910: "'From' and 'To' are on different channels",
    63016: "outside the WhatsApp 24-hour session window: a template (Content SID) is needed",
}
"""Refusals that are about the recipient or the message: record them, never retry them as they are."""

CONFIG_CODES: Mapping[int, str] = {
    20003: "authentication failed: check the Twilio account SID and auth token",
    20404: "resource not found: check the account SID, messaging service or content SID",
    21212: "invalid 'From' number",
    21602: "message has no body and no content SID",
    21606: "the 'From' number cannot send SMS",
    21703: "the messaging service has no sender able to send this message",
    63007: "no WhatsApp sender found for the 'From' address",
}
"""Refusals that no recipient is to blame for: an operator must fix the configuration."""

SERVICE_CODES: Mapping[int, str] = {
    20429: "too many requests",
    20500: "Twilio internal error",
    20503: "Twilio service unavailable",
}
"""Codes of transient answers (429, 5xx): raised as :class:`TransientSendError`, never recorded as failures."""

DELIVERY_CODES: Mapping[int, str] = {
    30003: "unreachable destination handset",
    30004: "message blocked",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown delivery error",
}
"""Errors that arrive later, in status callbacks (``ErrorCode``); a missing "delivered" is not a failure."""


def twilio_error_meaning(code: int | None) -> str:
    """A short English meaning of a Twilio error code (``"unknown Twilio error"`` for codes not listed)."""
    if code is None:
        return "no Twilio error code"
    for table in (PERMANENT_CODES, CONFIG_CODES, SERVICE_CODES, DELIVERY_CODES):
        if code in table:
            return table[code]
    return "unknown Twilio error"


class TwilioChannelError(EwsError):
    """Root of the errors raised by the Twilio channels."""


class TransientSendError(TwilioChannelError, TransientChannelError):
    """Twilio could not be reached or answered 5xx: the caller may retry.

    ``ambiguous`` is True when the request may have reached Twilio and created the message (read timeout,
    connection dropped after sending, gateway error): the caller must reconcile (list Twilio's messages to the
    recipient in the send window) before resending, since message create has no idempotency key.
    """

    def __init__(self, message: str, *, ambiguous: bool, status: int | None = None, code: int | None = None) -> None:
        TransientChannelError.__init__(self, message, ambiguous=ambiguous)
        self.status = status
        self.code = code


class RateLimited(TransientSendError):  # noqa: N818 - the name callers already use
    """Twilio answered 429: wait ``retry_after`` seconds before the next request to it."""

    def __init__(self, message: str, *, retry_after: float, code: int | None = None) -> None:
        super().__init__(message, ambiguous=False, status=429, code=code)
        self.retry_after = retry_after


class TwilioConfigError(TwilioChannelError, ConfigError):
    """Twilio refused the account or the sender (credentials, From, messaging service): fix the configuration."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


_PHONE_IN_TEXT = re.compile(r"(?:\+|%2B)\d{6,15}", re.IGNORECASE)


class _RedactFilter(logging.Filter):
    """Redact account SIDs and phone numbers from urllib3's request-line debug records.

    urllib3 logs ``"POST /2010-04-01/Accounts/AC…/Messages.json?To=%2B62…"`` at DEBUG; the filter rewrites the
    record's arguments so even a debug log of the HTTP layer holds neither.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub(arg) if isinstance(arg, str) else arg for arg in record.args)
        record.msg = _scrub(record.msg) if isinstance(record.msg, str) else record.msg
        return True


def _scrub(text: str) -> str:
    return _PHONE_IN_TEXT.sub("<number>", _ACCOUNT_SID.sub("AC…", text))


_REDACT_FILTER = _RedactFilter()


def _redact(url: str) -> str:
    """The path of ``url`` with any account SID replaced, and no query string (it may hold a number)."""
    return _ACCOUNT_SID.sub("AC…", urlsplit(url).path)


class _CheckedSession(requests.Session):
    """A ``requests`` session that runs the dispatcher's last check (:func:`at_the_wire`) as a request leaves.

    It is the last step before the socket: the request is built, the proxy settings merged.
    """

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        at_the_wire()
        return super().send(request, **kwargs)


class RoutedHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """``TwilioHttpClient`` with a timeout, an optional base-URL override and redacted logging.

    twilio-python composes every URL as ``<domain base_url>/<path>`` (``https://api.twilio.com/2010-04-01/…``)
    and then applies ``edge``/``region`` to the host in ``Client.request``; both happen before the HTTP
    client's ``request``, which is the one place every call of every domain passes through. When ``base_url``
    is set, ``request`` keeps the path and query and replaces the scheme and host (and prefixes any path of
    ``base_url``), so ``https://api.twilio.com/2010-04-01/Accounts/AC…/Messages.json`` becomes
    ``http://127.0.0.1:PORT/2010-04-01/Accounts/AC…/Messages.json``. Paging follows ``next_page_uri`` through
    the same path, so it is rerouted too.

    Parameters
    ----------
    timeout : float
        Seconds to wait for connect and for each read; must be positive.
    base_url : str, optional
        ``scheme://host[:port][/prefix]`` to send every request to instead of Twilio's hosts.
    """

    def __init__(self, *, timeout: float, base_url: str | None = None) -> None:
        if not timeout > 0:
            raise ValueError(f"Twilio timeout must be a positive number of seconds, got {timeout}")
        super().__init__(timeout=timeout, logger=_http_logger)
        checked = _CheckedSession()
        plain: requests.Session = self.session
        checked.adapters = plain.adapters  # twilio's own (pool size) mounts
        self.session: requests.Session = checked
        self.base_url: str | None = None
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(
                    f"Twilio base URL {base_url!r} must look like https://host[:port][/prefix] "
                    "(check EWS_TWILIO_BASE_URL)"
                )
            self.base_url = base_url.rstrip("/")
        self._local = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request (to ``base_url`` if set) and remember the response for this thread."""
        self._local.last_response = None
        if self.base_url is not None:
            url = self.reroute(url)
        response: Response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._local.last_response = response
        return response

    def reroute(self, url: str) -> str:
        """``url`` with its scheme and host replaced by ``base_url``'s (path prefixed by its path)."""
        if self.base_url is None:
            return url
        target, original = urlsplit(self.base_url), urlsplit(url)
        return urlunsplit((target.scheme, target.netloc, target.path + original.path, original.query, ""))

    @property
    def last_response(self) -> Response | None:
        """The last response this thread received (``None`` if the last request failed before one came)."""
        response: Response | None = getattr(self._local, "last_response", None)
        return response

    @property
    def reaches_twilio(self) -> bool:
        """Whether requests go to Twilio's own hosts (no override, or an override on ``twilio.com``)."""
        if self.base_url is None:
            return True
        host = urlsplit(self.base_url).hostname or ""
        return host == "twilio.com" or host.endswith(".twilio.com")

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Log method and path only: the query may hold a phone number, the path the account SID."""
        self.logger.debug("twilio request %s %s", kwargs["method"], _redact(str(kwargs["url"])))

    def log_response(self, status_code: int, response: Any) -> None:
        """Log the status only: headers may echo identifiers."""
        self.logger.debug("twilio response %s", status_code)


def twilio_client(account_sid: str, auth_token: str, *, base_url: str | None, timeout: float) -> Client:
    """The official Twilio client with a request timeout, optionally routed to ``base_url``.

    Parameters
    ----------
    account_sid, auth_token : str
        Credentials, resolved by the caller from the environment (never from YAML).
    base_url : str or None
        Send every request to this ``scheme://host[:port]`` instead of Twilio (the caller reads
        ``EWS_TWILIO_BASE_URL``); ``None`` for the real Twilio.
    timeout : float
        Seconds for connect and each read. A read timeout on create is ambiguous (see :class:`TransientSendError`).

    Returns
    -------
    twilio.rest.Client

    Raises
    ------
    ConfigError
        ``base_url`` is not an http(s) URL, credentials are empty or ``timeout`` is not positive.
    """
    if not account_sid or not auth_token:
        raise ConfigError("Twilio account SID and auth token must both be set (check the environment)")
    if not timeout > 0:
        raise ConfigError(f"Twilio timeout must be a positive number of seconds, got {timeout}")
    http_client = RoutedHttpClient(timeout=timeout, base_url=base_url)
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if _REDACT_FILTER not in urllib3_log.filters:
        urllib3_log.addFilter(_REDACT_FILTER)
    # environment={} keeps TWILIO_EDGE/TWILIO_REGION from the process environment out: routing is explicit.
    return Client(account_sid, auth_token, http_client=http_client, environment={})


def reaches_twilio(client: Client) -> bool:
    """Whether ``client`` sends to Twilio's own hosts; unknown HTTP clients count as Twilio (the safe side)."""
    http_client = getattr(client, "http_client", None)
    if isinstance(http_client, RoutedHttpClient):
        return http_client.reaches_twilio
    return True


def validity_seconds(valid_until: datetime, now: datetime) -> int | None:
    """Twilio ``ValidityPeriod`` for a warning valid until ``valid_until``: seconds, clamped to 1..14400.

    Returns ``None`` when the warning has already expired (the message must not be sent).
    """
    remaining = (valid_until - now).total_seconds()
    if remaining <= 0:
        return None
    return min(max(math.ceil(remaining), MIN_VALIDITY_SECONDS), MAX_VALIDITY_SECONDS)


def _retry_after(client: Client) -> float:
    http_client = getattr(client, "http_client", None)
    response = http_client.last_response if isinstance(http_client, RoutedHttpClient) else None
    headers = (response.headers if response is not None else None) or {}
    value = next((str(v) for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:  # an HTTP date: Twilio sends seconds, so fall back rather than parse
        seconds = DEFAULT_RETRY_AFTER
    return seconds if math.isfinite(seconds) and seconds >= 0 else DEFAULT_RETRY_AFTER


class _TwilioChannel:
    """What SMS and WhatsApp share: guards, the create call and error classification."""

    name = "twilio"

    def __init__(self, client: Client, *, status_callback: str | None, clock: Callable[[], datetime] | None) -> None:
        self.client = client
        self.status_callback = status_callback
        self.clock = clock or (lambda: datetime.now(UTC))
        # ews's own HTTP client runs the dispatcher's last check as the request leaves (see ews.channels.base).
        self.checks_at_the_wire = isinstance(getattr(client, "http_client", None), RoutedHttpClient)

    def _params(self, message: RenderedMessage) -> dict[str, Any]:
        raise NotImplementedError

    def find_sent(self, message: RenderedMessage, ledger_key: str, since: datetime) -> str | None:
        """The SID of a message Twilio accepted for this number and text since ``since``, if any.

        Message create has no idempotency key, so after a crash or an ambiguous time-out this is how the
        dispatcher learns whether a send got through before it sends again. Template messages (WhatsApp
        Content) are matched by number and time only: better one missed re-send than a duplicate.

        Raises
        ------
        TransientSendError
            Twilio could not be asked now (the row stays unsettled and is reconciled later).
        """
        params = self._params(message)
        body = params.get("body")
        try:
            found = self.client.messages.list(to=params["to"], date_sent_after=since, limit=200)
        except TwilioRestException as exc:
            self._refuse_config(int(exc.status), exc.code if isinstance(exc.code, int) else None)
            raise TransientSendError(
                f"cannot list Twilio messages to reconcile {ledger_key} (HTTP {exc.status})", ambiguous=False
            ) from None
        except TwilioException as exc:  # twilio 9 raises the base class for a page it could not fetch
            response = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(response, "status_code", None)
            if isinstance(status, int):
                self._refuse_config(status, None)
            raise TransientSendError(
                f"cannot list Twilio messages to reconcile {ledger_key} (HTTP {status or '?'})", ambiguous=False
            ) from None
        except requests.exceptions.RequestException:
            raise TransientSendError(f"cannot reach Twilio to reconcile {ledger_key}", ambiguous=False) from None
        sender = params.get("from_") or params.get("messaging_service_sid")
        for m in found:
            # Only what ews controls identifies its message: the recipient (the filter), the sender, the text
            # and the sending episode's window. A template message has no body to compare: number and time only.
            created = getattr(m, "date_created", None)
            if isinstance(created, datetime) and created.tzinfo is not None and created < since:
                continue
            if sender and sender not in (getattr(m, "from_", None), getattr(m, "messaging_service_sid", None)):
                continue
            if body is None or m.body == body:
                return str(m.sid)
        return None

    def _refuse_config(self, status: int, code: int | None) -> None:
        """Raise :class:`TwilioConfigError` for answers that mean the account or sender is wrong (401, 403...)."""
        if status in {401, 403} or (code is not None and code in CONFIG_CODES):
            raise TwilioConfigError(
                f"Twilio refused the account or sender (HTTP {status}, code {code}: {twilio_error_meaning(code)})",
                status=status,
                code=code,
            ) from None

    def send(self, message: RenderedMessage, ledger_key: str, *, valid_until: datetime | None = None) -> SendResult:
        """Create one Twilio message for ``message``.

        Parameters
        ----------
        message : RenderedMessage
            The message; ``message.to`` is E.164 and is never logged or echoed.
        ledger_key : str
            The send-ledger key already claimed by the caller (only logged).
        valid_until : datetime, optional
            The warning's expiry (aware): sets ``ValidityPeriod`` so Twilio drops the message if it cannot be
            delivered before then; already past -> ``SendResult("expired")`` and no request.

        Returns
        -------
        SendResult
            ``sent`` (``provider_id`` the message SID), ``no-contact``, ``expired`` or ``failed``.

        Raises
        ------
        RateLimited
            Twilio answered 429; wait ``retry_after`` seconds.
        TransientSendError
            5xx, connection error or timeout; if ``ambiguous``, reconcile before resending.
        TwilioConfigError
            The account, sender or messaging service is wrong; no recipient is at fault.
        """
        who = message.recipient_id
        if not message.to:
            return SendResult("no-contact")
        if is_fictional(message.to.removeprefix("whatsapp:")) and reaches_twilio(self.client):
            logger.warning("refused %s (%s): fictional number and a client that reaches Twilio", ledger_key, who)
            return SendResult("failed", detail="fictional number")
        params = self._params(message)
        if valid_until is not None:
            seconds = validity_seconds(valid_until, self.clock())
            if seconds is None:
                logger.info("not sent %s (%s): warning expired at %s", ledger_key, who, valid_until.isoformat())
                return SendResult("expired", detail=f"warning expired at {valid_until.isoformat()}")
            params["validity_period"] = seconds
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            created = self.client.messages.create(**params)
        except TwilioRestException as exc:
            return self._classify(exc, ledger_key, who)
        except requests.exceptions.ConnectTimeout:
            logger.warning("twilio connect timeout for %s (%s)", ledger_key, who)
            raise TransientSendError(
                f"Twilio connect timeout for recipient {who}: the message was not sent; retry", ambiguous=False
            ) from None
        except requests.exceptions.Timeout:
            logger.warning("twilio read timeout for %s (%s): ambiguous", ledger_key, who)
            raise TransientSendError(
                f"Twilio read timeout for recipient {who}: the message MAY have been created; list Twilio's "
                "messages to this recipient before resending",
                ambiguous=True,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            ambiguous = not _never_connected(exc)
            logger.warning("twilio connection error for %s (%s), ambiguous=%s", ledger_key, who, ambiguous)
            what = "the message MAY have been created; reconcile before resending" if ambiguous else "not sent; retry"
            raise TransientSendError(
                f"Twilio connection error for recipient {who}: {what}", ambiguous=ambiguous
            ) from None
        except (requests.exceptions.RequestException, TwilioException) as exc:
            # A reply cut short or unreadable (reset mid-response, bad JSON): the request went out.
            logger.warning("twilio reply lost for %s (%s): %s, ambiguous", ledger_key, who, type(exc).__name__)
            raise TransientSendError(
                f"Twilio's reply for recipient {who} was lost ({type(exc).__name__}): the message MAY have been "
                "created; reconcile before resending",
                ambiguous=True,
            ) from None
        sid = str(created.sid)
        logger.info("sent %s (%s) to %s as %s", ledger_key, who, mask_phone(message.to), sid)
        return SendResult("sent", provider_id=sid, provider_status=str(created.status or ""))

    def _classify(self, exc: TwilioRestException, ledger_key: str, who: str) -> SendResult:
        status = int(exc.status)
        code = int(exc.code) if isinstance(exc.code, int) else None
        meaning = twilio_error_meaning(code)
        # exc.msg and exc.uri are never repeated: Twilio's text can quote the number, the URI holds the SID.
        logger.warning("twilio refused %s (%s): HTTP %s code %s (%s)", ledger_key, who, status, code, meaning)
        if status == 429:
            raise RateLimited(
                f"Twilio rate limit (HTTP 429, code {code}) sending to recipient {who}: back off",
                retry_after=_retry_after(self.client),
                code=code,
            ) from None
        if status >= 500:
            raise TransientSendError(
                f"Twilio server error HTTP {status} (code {code}) for recipient {who}: retry later"
                + ("; the message MAY have been created, reconcile first" if status in {502, 504} else ""),
                ambiguous=status in {502, 504},
                status=status,
                code=code,
            ) from None
        self._refuse_config(status, code)
        return SendResult("failed", detail=f"twilio {code}: {meaning}")


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether a connection error happened before any byte was sent (refused, DNS), so it is not ambiguous."""
    text = repr(exc.args)
    return any(marker in text for marker in ("NewConnectionError", "NameResolutionError", "Connection refused"))


class TwilioSms(_TwilioChannel):
    """SMS through Twilio, from a number or a messaging service (one of the two).

    Parameters
    ----------
    client : twilio.rest.Client
        From :func:`twilio_client`.
    from_number : str, optional
        Sender number or registered alphanumeric sender ID.
    messaging_service_sid : str, optional
        ``MG…``; takes precedence over ``from_number`` when both are set.
    status_callback : str, optional
        URL Twilio posts delivery status to (signed with ``X-Twilio-Signature``).
    clock : callable, optional
        Returns the current aware datetime (for ``ValidityPeriod``); defaults to the system clock.
    """

    name = "twilio-sms"

    def __init__(
        self,
        client: Client,
        *,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ConfigError("TwilioSms needs a from_number or a messaging_service_sid")
        super().__init__(client, status_callback=status_callback, clock=clock)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    def _params(self, message: RenderedMessage) -> dict[str, Any]:
        params: dict[str, Any] = {"to": message.to, "body": message.text}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        return params


class TwilioWhatsApp(_TwilioChannel):
    """WhatsApp through Twilio: an approved template when one is configured, free text otherwise.

    Business-initiated messages outside the recipient's 24-hour window need a template; without a Content SID
    for the message's template, the text goes as free text and a closed window comes back as a permanent
    failure (63016).

    Parameters
    ----------
    client : twilio.rest.Client
        From :func:`twilio_client`.
    from_number : str
        The WhatsApp sender, E.164 (``whatsapp:`` is added if missing).
    content_sids : mapping of str to str
        Template name -> Content SID (``HX…``). Variables are ``{"1": message.text}`` for now.
    status_callback : str, optional
        URL Twilio posts delivery status to.
    templates : mapping of str to str, optional
        Audience (``"resident"``, ``"tagana"``) -> template name; an audience not listed uses its own name.
    clock : callable, optional
        Returns the current aware datetime (for ``ValidityPeriod``).
    """

    name = "twilio-whatsapp"

    def __init__(
        self,
        client: Client,
        *,
        from_number: str,
        content_sids: Mapping[str, str],
        status_callback: str | None,
        templates: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not from_number:
            raise ConfigError("TwilioWhatsApp needs a from_number (the WhatsApp sender)")
        super().__init__(client, status_callback=status_callback, clock=clock)
        self.from_number = from_number if from_number.startswith("whatsapp:") else "whatsapp:" + from_number
        self.content_sids = dict(content_sids)
        self.templates = dict(templates or {})

    def _params(self, message: RenderedMessage) -> dict[str, Any]:
        params: dict[str, Any] = {"to": "whatsapp:" + message.to.removeprefix("whatsapp:"), "from_": self.from_number}
        template = self.templates.get(message.audience, message.audience)
        content_sid = self.content_sids.get(template)
        if content_sid:
            params["content_sid"] = content_sid
            params["content_variables"] = json.dumps({"1": message.text}, ensure_ascii=False)
        else:
            params["body"] = message.text
        return params
