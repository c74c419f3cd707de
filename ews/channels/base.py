"""The one protocol every channel implements."""

from __future__ import annotations

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
