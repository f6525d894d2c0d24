"""The report: paper versus reproduction, as plain data, rendered by a jinja2 template.

``build`` matches the runs in the store against the studies, applies the verdict rules of
:mod:`harness.verdicts`, and returns a :class:`Report` of plain dataclasses; ``render_html``
hands it to ``templates/report.html.j2`` (package data in this package); ``claims_frame``
gives the same claim table to pandas for CSV or JSON. Each part of the page has its module:

- :mod:`~harness.report.page`: building the report, rendering and writing it
- :mod:`~harness.report.views`: the plain data classes the template renders
- :mod:`~harness.report.counting`: which runs count, and the pools a verdict stands on
- :mod:`~harness.report.claims`: the claim rows of trained runs (value, params, speed, ordering)
- :mod:`~harness.report.released`: released checkpoints' claim rows and evaluations
- :mod:`~harness.report.glance`: the evidence, the headlines and the scoreboard
- :mod:`~harness.report.runs`: the run table and the experiments
- :mod:`~harness.report.figures`: the curves and the learning-rate schedules
- :mod:`~harness.report.provenance`: data sets, software, devices and commits
- :mod:`~harness.report.filters`: the template's filters
- :mod:`~harness.report.text`: figures, counts and sources written as words
"""

from harness.report.filters import _code_spans
from harness.report.page import (
    build,
    claims_frame,
    render_html,
    report_for,
    write,
    written_text,
)
from harness.report.runs import environment_warning
from harness.report.views import ClaimRow, Report

__all__ = [
    "ClaimRow",
    "Report",
    "_code_spans",
    "build",
    "claims_frame",
    "environment_warning",
    "render_html",
    "report_for",
    "write",
    "written_text",
]
