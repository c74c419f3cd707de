"""The ews database behind small transactional methods: one call, one transaction.

:class:`Store` returns ews dataclasses (:class:`~ews.alerts.model.VillageState`, :class:`~ews.types.Recipient`)
or the frozen records of its repositories, never ORM objects. Upserts and the send-ledger claim use
``INSERT … ON CONFLICT`` on SQLite and PostgreSQL alike, so that two tasks racing for the same row cannot
both win and neither fails.

Phone numbers are personal data (UU 27/2022): only subscriber and coordinator methods see them, the send
ledger stores :func:`ews.contacts.recipient_id`, and no message or log line here contains a number.

:class:`Store` only composes one repository per aggregate (:mod:`ews.store.base` has what they share): warnings
and threads (:mod:`~ews.store.warnings`), village states and alert versions (:mod:`~ews.store.versions`),
deliveries and the send ledger (:mod:`~ews.store.deliveries`, :mod:`~ews.store.ledger`), who heard an alert
(:mod:`~ews.store.audiences`), subscribers (:mod:`~ews.store.subscribers`), inbound messages
(:mod:`~ews.store.inbound`), Tagana units (:mod:`~ews.store.tagana`), runs (:mod:`~ews.store.runs`) and the
command center's (:mod:`~ews.store.command`). The records they define are re-exported here.
"""

from __future__ import annotations

from ews.store.audiences import AudienceRepository
from ews.store.cap_areas import CapAreaRecord, CapAreaRepository
from ews.store.command import CommandRepository
from ews.store.deliveries import STATUS_RANK, DeliveryRepository
from ews.store.fanout import FannedOut, FanOut, FanOutRepository
from ews.store.inbound import InboundRepository
from ews.store.ledger import Claim, LedgerRepository, Outcome, QueuedMessage
from ews.store.runs import RunRepository
from ews.store.subscribers import (
    EXPORT_COLUMNS,
    ImportReport,
    OptOutChecker,
    SubscriberRecord,
    SubscriberRepository,
)
from ews.store.tagana import TaganaRepository
from ews.store.versions import AlertVersionRecord, NewVersion, PendingThread, VersionRepository
from ews.store.warnings import WarningRepository


class Store(
    WarningRepository,
    VersionRepository,
    DeliveryRepository,
    LedgerRepository,
    FanOutRepository,
    AudienceRepository,
    SubscriberRepository,
    InboundRepository,
    TaganaRepository,
    RunRepository,
    CommandRepository,
    CapAreaRepository,
):
    """The ews database: warnings, village states, alert versions, the send ledger, subscribers and runs.

    Parameters
    ----------
    engine
        An engine from :func:`ews.store.db.open_store` (schema at the latest revision). SQLite and
        PostgreSQL are supported. A :class:`Store` is safe to share between threads.
    """


__all__ = [
    "EXPORT_COLUMNS",
    "STATUS_RANK",
    "AlertVersionRecord",
    "CapAreaRecord",
    "Claim",
    "FanOut",
    "FannedOut",
    "ImportReport",
    "NewVersion",
    "OptOutChecker",
    "Outcome",
    "PendingThread",
    "QueuedMessage",
    "Store",
    "SubscriberRecord",
]
