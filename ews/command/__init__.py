"""Pure: the command center's rules (report routing; later escalation timing), free of I/O.

``text`` puts chat text in normal form, ``lexicon`` holds the built-in keywords, units and deadlines,
``rules`` the per-region ``routing:`` model and ``routing`` classifies a report. See docs/routing.md.
"""

from ews.command.lexicon import PRECEDENCE, Category
from ews.command.routing import CategoryMatch, Confidence, ReportRouting, report_routing
from ews.command.rules import CategoryRules, OperatorRules, RoutingRules

__all__ = [
    "PRECEDENCE",
    "Category",
    "CategoryMatch",
    "CategoryRules",
    "Confidence",
    "OperatorRules",
    "ReportRouting",
    "RoutingRules",
    "report_routing",
]
