"""The one protocol every channel implements."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ews.errors import EwsError
from ews.types import RenderedMessage


@dataclass(frozen=True)
class SendResult:
    """What a channel did with one message: ``dry-run``, ``sent``, ``no-contact`` or ``failed``.

    ``detail`` explains a failure; ``provider_status`` is what the provider said of an accepted message
    (Twilio: ``queued``, ``accepted``), kept apart from any error.
    """

    status: str
    provider_id: str | None = None
    detail: str = ""
    provider_status: str = ""


class Channel(Protocol):
    """What every channel does: send a message once, and say afterwards whether a send got through.

    ``find_sent`` is how the dispatcher settles a send whose outcome it never learned (the worker died, or
    the request timed out after it went out) before it sends again.

    A channel that calls a provider over the network may say so with ``checks_at_the_wire = True`` and call
    :func:`at_the_wire` right before its request leaves: the dispatcher's last check (the recipient's
    opt-out) then runs there, so its database round trip overlaps building the request. Any other channel
    is checked before ``send`` is called.
    """

    name: str

    def send(self, message: RenderedMessage, ledger_key: str, *, valid_until: datetime | None = None) -> SendResult:
        """Deliver ``message``; raise :class:`TransientChannelError` for a failure worth retrying.

        Never log or raise with the phone number in the text.
        """
        ...

    def find_sent(self, message: RenderedMessage, ledger_key: str, since: datetime) -> str | None:
        """The provider id of this message if the provider accepted it since ``since``, else ``None``."""
        ...


class TransientChannelError(EwsError):
    """A send that may succeed later: retry after ``retry_after`` seconds (or back off).

    ``ambiguous`` means the provider may have accepted the message before the failure (a time-out after
    the request went out): the dispatcher reconciles with the provider before it sends again.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class Withheld(EwsError):  # noqa: N818 - it names what happened to the message, not an error
    """The dispatcher's last check stopped a send before its request left: nothing was sent (the reason)."""


_LAST_CHECK: ContextVar[Callable[[], str | None] | None] = ContextVar("ews_last_check", default=None)


@contextlib.contextmanager
def last_check(check: Callable[[], str | None]) -> Iterator[None]:
    """Run ``check`` when the ``send`` inside this block reaches :func:`at_the_wire` (a reason stops it)."""
    token = _LAST_CHECK.set(check)
    try:
        yield
    finally:
        _LAST_CHECK.reset(token)


def at_the_wire() -> None:
    """Called by a channel as late as it can before its request leaves: runs the pending last check once.

    Raises
    ------
    Withheld
        The check gave a reason not to send (the recipient opted out since the message was leased).
    """
    check = _LAST_CHECK.get()
    if check is None:
        return
    _LAST_CHECK.set(None)
    reason = check()
    if reason:
        raise Withheld(reason)
