"""The Usage tab's figures: one function, `usage_dashboard`, reads everything the page shows in a fixed number of
queries, whatever the amount of usage (each `usage_totals` read is two, the names three more).

What the user chose comes from the URL (`usage.reports.usage_query_parse`, plus the page's own `chart` and `sort`);
what they may see from their permission rows (`usage.reports.usage_scope_for`). Every figure is a
`usage.rollup.usage_totals` read of the scope-narrowed filters, so the page agrees with every other view of the
same period, to the last charge:

- totals per report group (Chatbot / Image & Speech) and in all, against the previous period;
- a series per report group or per tool over every period of the range (hours, days, weeks or months in the
  organization's time zone, empty ones included);
- breakdowns by workspace, member, tool and model. Units are counted in the price list's unit of each model, so they
  are shown per model, and per tool only where all its models count the same unit.

Names appear only for what the user may see: workspaces and members of their scope, and those in their own figures.
"""

from usage.dashboard.figures import (
    CHART_MODES,
    DEFAULT_SORT,
    ActiveFilter,
    Breakdown,
    BreakdownRow,
    Change,
    Chart,
    Choice,
    Series,
    SortLink,
    UsageDashboard,
    period_label,
    period_phrase,
    period_starts,
)
from usage.dashboard.read import usage_dashboard

__all__ = [
    "CHART_MODES",
    "DEFAULT_SORT",
    "ActiveFilter",
    "Breakdown",
    "BreakdownRow",
    "Change",
    "Chart",
    "Choice",
    "Series",
    "SortLink",
    "UsageDashboard",
    "period_label",
    "period_phrase",
    "period_starts",
    "usage_dashboard",
]
