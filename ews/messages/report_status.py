"""Render a report's status for its reporter (and an overdue notice for the duty operator) from ``alert_templates/``.

One template per language, ``report_status.<language>.j2`` (``id``, ``en``; any other language gets ``id``),
taking the status, the report's number, the unit, the deadline in the region's local time and the command
center's name. SMS text is GSM-7 and at most :data:`~ews.messages.render.SMS_MAX_SEGMENTS` parts: an operator's
note is cut first, then the unit's name, each at a word boundary and marked ``..``. Pure apart from reading
the templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

from ews.errors import TemplateError
from ews.messages.gsm7 import sms_segments, to_gsm7
from ews.messages.render import SMS_MAX_SEGMENTS, WHATSAPP_MAX_CHARS

STATUSES = ("routed", "joined", "in-progress", "resolved", "escalated")
"""What a report-status message can say (``joined``: a repeat joined to an open report)."""

_LANGUAGES = ("id", "en")
_ELLIPSIS = ".."


@dataclass(frozen=True)
class ReportStatus:
    """What to tell about one report: ``deadline`` already in the region's local zone named ``zone_name``."""

    status: str
    number: int
    unit: str
    deadline: datetime | None = None
    zone_name: str = ""
    joined_to: int | None = None
    note: str = ""


def report_language(requested: str | None) -> str:
    """``en`` for English (``en-GB``, ``EN``), else ``id``: the languages with a report template."""
    base = (requested or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base in _LANGUAGES else "id"


class ReportStatusRenderer:
    """Renders :class:`ReportStatus` texts from ``report_status.{id,en}.j2`` in ``templates_dir``.

    Parameters
    ----------
    templates_dir
        The repository's ``alert_templates/`` folder.
    center
        The command center's name that signs the message (``command_center.name``, e.g. ``Pusdalops``).

    Raises
    ------
    TemplateError
        ``templates_dir`` is not a folder.
    """

    def __init__(self, templates_dir: Path, *, center: str = "Pusdalops") -> None:
        if not templates_dir.is_dir():
            raise TemplateError(
                f"alert template folder {templates_dir} does not exist or is not a folder; "
                "pass the path of the repository's alert_templates/ folder"
            )
        self._dir = templates_dir
        self._center = " ".join(center.split()) or "Pusdalops"
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text SMS/WhatsApp bodies, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, what: ReportStatus, *, language: str, channel: str) -> str:
        """The message text for ``channel`` (``sms``: GSM-7, at most 2 parts; ``whatsapp``: 1024 characters).

        Raises
        ------
        TemplateError
            An unknown status or channel, a missing or broken template, or a text that does not fit even
            with the note and the unit's name cut to nothing.
        """
        if what.status not in STATUSES:
            raise TemplateError(f"report status {what.status!r} has no message; use one of {', '.join(STATUSES)}")
        if channel not in ("sms", "whatsapp"):
            raise TemplateError(f"channel {channel!r} has no report-status message; use sms or whatsapp")
        name = f"report_status.{report_language(language)}.j2"
        deadline = "" if what.deadline is None else f"{what.deadline:%H:%M} {what.zone_name}".strip()
        parts = {"note": " ".join(what.note.split()), "unit": " ".join(what.unit.split())}
        sms = channel == "sms"

        def fitted(values: dict[str, str]) -> str | None:
            text = self._text(name, what, deadline, values, sms=sms)
            fits = sms_segments(text) <= SMS_MAX_SEGMENTS if sms else len(text) <= WHATSAPP_MAX_CHARS
            return text if fits else None

        text = fitted(parts)
        if text is not None:
            return text
        for key in ("note", "unit"):
            words = parts[key].split()
            while words:
                words.pop()
                parts[key] = " ".join(words) + _ELLIPSIS if words else ""
                text = fitted(parts)
                if text is not None:
                    return text
        raise TemplateError(f"template {self._dir / name} does not fit {channel} even with no note or unit name")

    def _text(self, name: str, what: ReportStatus, deadline: str, parts: dict[str, str], *, sms: bool) -> str:
        context = {
            "status": what.status,
            "number": what.number,
            "joined_to": what.joined_to if what.joined_to is not None else "",
            "deadline": deadline,
            "center": self._center,
            **parts,
        }
        try:
            raw = self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template {self._dir / name} not found; add it beside the alert templates") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {self._dir / name} does not render: {exc}") from exc
        text = " ".join(raw.split())
        return to_gsm7(text) if sms else text
