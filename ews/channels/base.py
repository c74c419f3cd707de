"""The one protocol every channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
