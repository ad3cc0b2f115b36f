"""Rendering scan decisions: terminal table, Markdown, JSON and CSV.

Every renderer consumes the decisions as a stream and returns the Summary, so
a fleet of any size is reported in bounded memory: JSON puts `summary` after
`endpoints`, Markdown spools its full table to a temporary file, and the
terminal table lists at most `limit` rows per section, laid out to fit a
terminal (migrate.scan.tables): narrow by default, every column when wide.
"""

from __future__ import annotations

import csv
import json
import tempfile
import textwrap
from collections.abc import Iterable
from typing import IO, Any, NamedTuple

from tabulate import tabulate

from migrate.core.documents import FORMAT_VERSION, json_default
from migrate.core.flags import RISK_FLAGS
from migrate.core.json_text import scalar_text
from migrate.core.records import Decision
from migrate.core.summary import Summary
from migrate.scan.tables import Column, render

FORMATS = ("table", "markdown", "json", "csv")
JSON_FIELDS = (
    "endpoint_id",
    "endpoint_name",
    "owner",
    "model_name",
    "param_count_b",
    "bundle_id",
    "endpoint_status",
    "gpu_memory_utilization",
    "eager_now",
    "eager_after",
    "action",
    "reason",
    "flags",
    "command_after",
)
# Beyond the contract: the evidence a reviewer needs to trust the action, and
# model engine's own size reading (param_count_b is the total, which risk uses).
EXTRA_FIELDS = ("provenance", "evidence", "inference_framework", "model_engine_param_count_b")
# CSV: the contract columns, then these.
CSV_EXTRA_FIELDS = ("provenance", "model_engine_param_count_b")


def as_json(decision: Decision) -> dict[str, Any]:
    data = {name: getattr(decision, name) for name in JSON_FIELDS + EXTRA_FIELDS}
    data["flags"] = list(decision.flags)
    return data


class JsonChunk(NamedTuple):
    """Consecutive decisions as the JSON report has them: the counts of all, the text of those
    shown (their lines as write_json separates them; "" when none is)."""

    summary: Summary
    text: str


def json_chunk(decisions: list[Decision], only_changes: bool = False) -> JsonChunk:
    """Made where the decisions are made (scan's ``render_chunk``): a worker, for a big fleet.

    The main process then counts and writes a chunk at once, not each endpoint.
    """
    summary = Summary()
    shown = []
    for decision in decisions:
        summary.add(decision)
        if _shown(decision, only_changes):
            shown.append(json_text(decision))
    return JsonChunk(summary, _LINES.join(shown))


# json.dumps(as_json(decision)), written by hand around the C string encoder: the
# general encoder's work around the values costs more than encoding them (median
# 10.1 us a line, 8.4 by hand).
_STRING = json.encoder.encode_basestring_ascii
_KEYED = tuple((name, json.dumps(name) + ": ") for name in JSON_FIELDS + EXTRA_FIELDS)


def json_text(decision: Decision) -> str:
    """json.dumps(as_json(decision))."""
    # Strings and nulls, most of the values, without a call each.
    return (
        "{"
        + ", ".join(
            [
                key + (_STRING(v) if type(v) is str else "null" if v is None else _json_value(v))
                for name, key in _KEYED
                for v in (getattr(decision, name),)
            ]
        )
        + "}"
    )


def _json_value(value: Any) -> str:
    """A value that is not a string (json_text writes those)."""
    text = scalar_text(value)
    if text is not None:
        return text
    if type(value) is list and all(type(item) is str for item in value):
        return "[" + ", ".join(map(_STRING, value)) + "]"
    return json.dumps(value)  # anything else (a stored framework may be any JSON)


def _shown(decision: Decision, only_changes: bool) -> bool:
    return decision.changes or not only_changes


_LINES = ",\n  "  # between two endpoints of the JSON report


def write_json(
    decisions: Iterable[Decision | JsonChunk],
    out: IO[str],
    meta: dict[str, Any],
    only_changes: bool = False,
) -> Summary:
    """The JSON report of the decisions, or of chunks json_chunk made with this only_changes."""
    summary = Summary()
    out.write(f'{{"format_version": {FORMAT_VERSION},\n "scan": ')
    out.write(json.dumps(meta, sort_keys=True, default=json_default) + ',\n "endpoints": [')
    first = True
    for d in decisions:
        chunk = d if isinstance(d, JsonChunk) else json_chunk([d], only_changes)
        summary.merge(chunk.summary)
        if chunk.text:
            out.write(("\n  " if first else _LINES) + chunk.text)
            first = False
    out.write('\n ],\n "summary": ' + json.dumps(summary.as_dict()) + "\n}\n")
    return summary


def write_csv(
    decisions: Iterable[Decision], out: IO[str], meta: dict[str, Any], only_changes: bool = False
) -> Summary:
    summary = Summary()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JSON_FIELDS + CSV_EXTRA_FIELDS)
    for d in decisions:
        summary.add(d)
        if not _shown(d, only_changes):
            continue
        row = as_json(d)
        row["flags"] = ";".join(d.flags)
        writer.writerow([_cell(row[f]) for f in JSON_FIELDS + CSV_EXTRA_FIELDS])
    return summary


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _size(d: Decision) -> str:
    return "?" if d.param_count_b is None else f"{d.param_count_b}B"


def _util(d: Decision) -> str:
    return "-" if d.gpu_memory_utilization is None else f"{d.gpu_memory_utilization:g}"


def _row(d: Decision, flag_sep: str = ", ") -> list[str]:
    return [
        d.endpoint_name,
        d.model_name or "-",
        _size(d),
        _util(d),
        d.endpoint_status or "-",
        d.action,
        flag_sep.join(d.flags) or "-",
        d.reason,
    ]


HEADERS = ["endpoint", "model", "size", "util", "status", "action", "flags", "reason"]
# The terminal table: an endpoint's name never wraps (it is what people copy); model,
# status and reason need --wide: the name usually says the model, the size is shown.
COLUMNS = (
    Column("endpoint", fold_at=32),
    Column("model", wide_only=True, wraps=True),
    Column("size", align="right"),
    Column("util", align="right"),
    Column("status", wide_only=True, fold_at=12),
    Column("action"),
    Column("flags", wraps=True, min_width=max(len(f) for f in RISK_FLAGS)),
    Column("reason", wide_only=True, wraps=True, min_width=16),
)


def _summary_rows(summary: Summary) -> list[list[Any]]:
    rows: list[list[Any]] = [["LLM endpoints scanned", summary.total]]
    rows += [[f"  {action}", n] for action, n in summary.as_dict()["actions"].items()]
    return rows


def write_table(
    decisions: Iterable[Decision],
    out: IO[str],
    meta: dict[str, Any],
    only_changes: bool = False,
    limit: int = 200,
    *,
    wide: bool = False,
    width: int | None = None,
) -> Summary:
    summary = Summary()
    changing: list[list[str]] = []
    flagged: list[list[str]] = []
    more_changing = more_flagged = 0
    for d in decisions:
        summary.add(d)
        if d.changes:
            if len(changing) < limit:
                changing.append(_row(d, "\n"))
            else:
                more_changing += 1
        elif d.flags and not only_changes and any(f in RISK_FLAGS for f in d.flags):
            if len(flagged) < limit:
                flagged.append(_row(d, "\n"))
            else:
                more_flagged += 1
    out.write(tabulate(_summary_rows(summary), tablefmt="plain") + "\n")
    if summary.flags:
        flags = ", ".join(f"{f}: {n}" for f, n in sorted(summary.flags.items()))
        out.write(textwrap.fill(f"flags: {flags}", width or 100, subsequent_indent="  ") + "\n")
    out.write(f"\nEndpoints that change ({summary.changes}):\n")
    out.write(render(COLUMNS, changing, width=width, wide=wide) if changing else "  none\n")
    if more_changing:
        out.write(f"  ... and {more_changing} more (use --format csv or json for all)\n")
    if not only_changes:
        out.write("\nFlagged endpoints that do not change:\n")
        out.write(render(COLUMNS, flagged, width=width, wide=wide) if flagged else "  none\n")
        if more_flagged:
            out.write(f"  ... and {more_flagged} more (use --format csv or json for all)\n")
    return summary


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_markdown(
    decisions: Iterable[Decision], out: IO[str], meta: dict[str, Any], only_changes: bool = False
) -> Summary:
    summary = Summary()
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as table,
        tempfile.TemporaryFile("w+", encoding="utf-8") as risks,
    ):
        table.write("| " + " | ".join(HEADERS) + " |\n|" + "---|" * len(HEADERS) + "\n")
        for d in decisions:
            summary.add(d)
            risky = [f for f in d.flags if f in RISK_FLAGS]
            if risky and (d.changes or "large-model-at-0.95" in risky):
                risks.write(
                    f"- `{_md(d.endpoint_name)}` ({_md(d.model_name or '?')}, {_size(d)}, "
                    f"util {_util(d)}): **{d.action}**; {', '.join(risky)}\n"
                )
            if _shown(d, only_changes):
                table.write("| " + " | ".join(_md(c) for c in _row(d)) + " |\n")
        out.write("# bundle-migrate scan\n\n")
        out.write(
            f"Database `{meta.get('database', '?')}`, schema `{meta.get('schema', '?')}`, "
            f"threshold {meta.get('policy', {}).get('threshold', '?')}, "
            f"recorded flags: {meta.get('policy', {}).get('recorded', '?')}, "
            f"args recorded since {meta.get('policy', {}).get('args_recorded_since', '?')}, "
            f"scanned {meta.get('generated_at', '?')}.\n\n"
        )
        out.write("## Summary\n\n| | endpoints |\n|---|---:|\n")
        out.write(f"| LLM endpoints scanned | {summary.total} |\n")
        for action, n in summary.as_dict()["actions"].items():
            out.write(f"| {action} | {n} |\n")
        out.write("\n## Risks\n\n")
        if risks.tell():
            risks.seek(0)
            for line in risks:
                out.write(line)
        else:
            out.write("None flagged.\n")
        out.write("\n## Endpoints\n\n")
        table.seek(0)
        for line in table:
            out.write(line)
    return summary


# Formats whose writer takes what a worker made of each chunk of decisions (scan's
# render_chunk), given --only-changes.
CHUNK_RENDERERS = {"json": json_chunk}
WRITERS = {
    "json": write_json,
    "csv": write_csv,
    "table": write_table,
    "markdown": write_markdown,
}
