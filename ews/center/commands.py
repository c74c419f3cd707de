"""``ews reports``: the report queue from the command line (list, add an operator's report, change a status, escalate).

A command group of :mod:`ews.cli` (which adds it with :func:`add_report_commands`): the front door that reads
the clock and the region files and calls :mod:`ews.center.reports`. Nothing here prints a phone number.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ews.center.reports import ReportIntake

EXIT_OK = 0


def _intake(args: argparse.Namespace, *, read_places: bool) -> ReportIntake | None:
    from ews.center.reports import ReportIntake
    from ews.cli import _region_file
    from ews.config import open_region

    regions = getattr(args, "region", None) or []
    if isinstance(regions, str):
        regions = [regions]
    if not regions:
        return None
    configs = [open_region(_region_file(value), os.environ) for value in regions]
    return ReportIntake.from_configs(configs, read_places=read_places)


def _store(args: argparse.Namespace) -> Any:
    from ews.cli import _database_url
    from ews.store.repository import Store

    return Store.from_url(_database_url(args))


def cmd_reports_list(args: argparse.Namespace) -> int:
    """The report queue: open reports by deadline (the overdue first), then resolved ones."""
    from ews.cli import _region_id

    now = datetime.now(UTC)
    store = _store(args)
    try:
        region = _region_id(args.region) if args.region else None
        records = store.reports(
            regions=[region] if region else None,
            statuses=None if args.all else ("received", "routed", "in-progress"),
            limit=args.limit,
            now=now,
        )
        counts = store.report_counts([region] if region else None, now=now)
    finally:
        store.close()
    print("  ".join(f"{k} {v}" for k, v in counts.items()))
    for r in records:
        late = f" OVERDUE x{r.escalations}" if r.overdue else (f" escalated x{r.escalations}" if r.escalations else "")
        joined = f" (joined to #{r.duplicate_of})" if r.duplicate_of else ""
        text = " ".join(r.body.split())
        print(
            f"#{r.id}\t{r.status}{late}{joined}\t{r.category}\t{r.unit}\tby {r.deadline_at:%Y-%m-%d %H:%M} UTC\t"
            f"{r.village_code or '-'} ({r.located_by or 'no place'})\t{r.reporter}\t{text[:60]}"
        )
    return EXIT_OK


def cmd_reports_add(args: argparse.Namespace) -> int:
    """Take a report an operator typed in (a phone call, a radio message): routed at once."""
    from ews.center.reports import intake_report

    intake = _intake(args, read_places=True)
    store = _store(args)
    try:
        result = intake_report(
            store, source="operator", source_ref=args.ref or f"cli-{secrets.token_hex(8)}", body=args.text,
            at=datetime.now(UTC), region=intake.default if intake else None, village_code=args.village,
            reporter_label=args.label, language=args.language, intake=intake, actor=args.by, role="operator",
        )  # fmt: skip
    finally:
        store.close()
    state = "already stored (same --ref)" if result.replayed else result.status
    joined = f", joined to #{result.duplicate_of}" if result.duplicate_of else ""
    print(
        f"report #{result.report_id}: {state}{joined}: {result.routing.category} -> {result.unit}, "
        f"by {result.deadline_at:%Y-%m-%d %H:%M} UTC; place {result.village_code or 'unknown'} "
        f"({result.located_by or '-'}); warning {result.thread_id or 'none'}"
    )
    return EXIT_OK


def cmd_reports_status(args: argparse.Namespace) -> int:
    """Move a report forward (routed, in-progress, resolved); its reporters are told once through the ledger."""
    from ews.center.reports import set_report_status

    intake = _intake(args, read_places=False)
    store = _store(args)
    try:
        record = set_report_status(
            store, args.id, args.status, actor=args.by, role="operator", note=args.note, at=datetime.now(UTC),
            intake=intake,
        )  # fmt: skip
    finally:
        store.close()
    print(f"report #{record.id}: {record.status} ({record.unit}); `ews send` delivers the reporter's message")
    return EXIT_OK


def cmd_reports_escalate(args: argparse.Namespace) -> int:
    """Escalate the open reports past their deadline, once (the scheduler does it every minute)."""
    from ews.center.reports import escalate_overdue

    intake = _intake(args, read_places=False)
    store = _store(args)
    try:
        done = escalate_overdue(store, at=datetime.now(UTC), intake=intake)
    finally:
        store.close()
    for e in done:
        paged = "duty number paged" if e.page_ledger_id else "no duty number paged"
        print(f"report #{e.report_id}: escalation {e.escalations}, {e.unit}, {paged}")
    print(f"ews reports escalate: {len(done)} report(s) escalated", file=sys.stderr)
    return EXIT_OK


def add_report_commands(sub: Any, database_help: str) -> None:
    """Add ``ews reports list|add|status|escalate`` to the ``ews`` parser's subcommands ``sub``."""
    reports = sub.add_parser("reports", help="the report queue: list, add, status, escalate")
    actions = reports.add_subparsers(dest="action", required=True)
    lst = actions.add_parser("list", help="open reports by deadline (overdue first); --all with resolved ones")
    lst.add_argument("--region", help="only this region (regions/<id>.yaml or id)")
    lst.add_argument("--all", action="store_true", help="resolved reports too")
    lst.add_argument("--limit", type=int, default=200)
    lst.set_defaults(func=cmd_reports_list)
    add = actions.add_parser("add", help="take a report an operator typed in; routed at once")
    add.add_argument("--region", required=True, help="regions/<id>.yaml or id (its rules and boundaries)")
    add.add_argument("--text", required=True, help="the report as told")
    add.add_argument("--village", help="the village (or kecamatan) code, when the operator knows it")
    add.add_argument("--label", default="operator", help="who reported, in words (e.g. 'telepon warga')")
    add.add_argument("--language", choices=("id", "en"), default=None)
    add.add_argument("--by", default=os.environ.get("USER", "operator"), help="the operator's name (audit log)")
    add.add_argument("--ref", help="a reference that makes a repeated command store the report once")
    add.set_defaults(func=cmd_reports_add)
    st = actions.add_parser("status", help="move a report forward: routed, in-progress, resolved")
    st.add_argument("id", type=int)
    st.add_argument("status", choices=("routed", "in-progress", "resolved"))
    st.add_argument("--by", required=True, help="the operator's name (audit log)")
    st.add_argument("--note", default="", help="a short note for the reporter (e.g. 'Tim menuju lokasi')")
    st.add_argument("--region", action="append", help="region file or id (time zone, command center name)")
    st.set_defaults(func=cmd_reports_status)
    esc = actions.add_parser("escalate", help="escalate overdue reports once (and page the duty number)")
    esc.add_argument("--region", action="append", help="region file or id (deadlines, duty number); repeat")
    esc.set_defaults(func=cmd_reports_escalate)
    for p in (lst, add, st, esc):
        p.add_argument("--database", help=database_help)
