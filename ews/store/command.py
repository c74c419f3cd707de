"""The command center's repositories together: mobilisations, reports, users and sessions, audit, dashboard reads."""

from __future__ import annotations

from ews.store.audit import AuditRepository
from ews.store.dashboard import DashboardQueries
from ews.store.mobilisations import MobilisationRepository
from ews.store.reports import ReportRepository
from ews.store.users import UserRepository


class CommandRepository(MobilisationRepository, ReportRepository, UserRepository, AuditRepository, DashboardQueries):
    """Mixed into :class:`ews.store.repository.Store`."""
