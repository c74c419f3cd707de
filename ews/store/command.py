"""The command center's repositories together: mobilisations, reports, users and sessions, the audit log."""

from __future__ import annotations

from ews.store.audit import AuditRepository
from ews.store.mobilisations import MobilisationRepository
from ews.store.reports import ReportRepository
from ews.store.users import UserRepository


class CommandRepository(MobilisationRepository, ReportRepository, UserRepository, AuditRepository):
    """Mixed into :class:`ews.store.repository.Store`."""
