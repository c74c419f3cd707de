"""The one protocol every channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ews.errors import EwsError
from ews.types import RenderedMessage


@dataclass(frozen=True)
class SendResult:
    """What a channel did with one message: ``dry-run``, ``sent``, ``no-contact`` or ``failed``."""

    status: str
    provider_id: str | None = None
    detail: str = ""


class Channel(Protocol):
    """Delivers a message once. The caller has already claimed ``ledger_key`` in the send ledger."""

    name: str

    def send(self, message: RenderedMessage, ledger_key: str) -> SendResult:
        """Deliver ``message``; never log or raise with the phone number in the text."""
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
