"""The dry-run channel: one JSON line per message in an append-only file, phone numbers masked."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from ews.channels.base import SendResult
from ews.contacts import mask_phone
from ews.types import RenderedMessage


def outbox_record(message: RenderedMessage, ledger_key: str, status: str) -> dict[str, object]:
    """The JSON-safe line for one message (the number masked, the recipient pseudonymous)."""
    return {
        "audience": message.audience,
        "channel": message.channel,
        "language": message.language,
        "to": mask_phone(message.to) if message.to else None,
        "recipient_id": message.recipient_id,
        "village_code": message.village_code,
        "level": message.level.label,
        "warning_id": message.warning_id,
        "segments": message.segments,
        "shortened": message.shortened,
        "dedup_key": ledger_key,
        "text": message.text,
        "status": status,
    }


class FileOutbox:
    """Append messages to ``path`` (JSON Lines), flushed and fsync'ed per message.

    Nothing leaves the machine: this is the channel for demos, reviews and dry runs.
    """

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, message: RenderedMessage, ledger_key: str, *, valid_until: datetime | None = None) -> SendResult:
        """Append one line; a message without a number is recorded as ``no-contact``."""
        status = "dry-run" if message.to else "no-contact"
        line = json.dumps(outbox_record(message, ledger_key, status), ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return SendResult(status, provider_id=f"outbox:{ledger_key}")

    def find_sent(self, message: RenderedMessage, ledger_key: str, since: datetime) -> str | None:
        """Whether a line for ``ledger_key`` is in the file already (a crash after writing it)."""
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if f'"dedup_key": {json.dumps(ledger_key)}' in line:
                    return f"outbox:{ledger_key}"
        return None
