"""The trace page's HTML (pure): a summary, the sequence diagram, a table of the events.

Self-contained: inline CSS, no script, no external asset (it works offline). Every
string of the trace is escaped (see diagram.py); links carry ids percent-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from streamapp.tracing.diagram import KINDS, at_ms_text, clean, esc, sequence_svg

STATUSES = ("ACTIVE", "COMPLETED", "FAILED", "STALLED")
#: A trace still moving refreshes itself this often (seconds): no script needed.
REFRESH_S = 5

#: The look every streamapp page shares (the dashboard uses it too).
PAGE_CSS = """
:root{color-scheme:light;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--panel:#fff;
--bg:#f1f5f9;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
background:var(--bg)}
header.top{background:#0f172a;color:#e2e8f0;padding:12px 24px;display:flex;gap:16px;
align-items:baseline;flex-wrap:wrap}
header.top h1{font-size:18px;margin:0;color:#fff;font-weight:650}
header.top a{color:#93c5fd;text-decoration:none}
header.top a:hover{text-decoration:underline}
header.top .meta{margin-left:auto;color:#94a3b8;font-size:12px}
main{padding:20px 24px;max-width:1400px}
section.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;
padding:14px 16px;margin:0 0 16px}
section.panel h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);
margin:0 0 10px;font-weight:650}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 10px 5px 0;border-bottom:1px solid var(--line);
vertical-align:baseline}
th{color:var(--muted);font-weight:600;font-size:12px;white-space:nowrap}
tr:last-child td{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
a{color:var(--accent)}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:650;
letter-spacing:.02em;background:#e2e8f0;color:#334155;white-space:nowrap}
.badge.ACTIVE{background:#dbeafe;color:#1e40af}
.badge.COMPLETED,.badge.ready{background:#dcfce7;color:#166534}
.badge.FAILED,.badge.down{background:#fee2e2;color:#991b1b}
.badge.STALLED,.badge.waiting{background:#fef3c7;color:#92400e}
"""

_TRACE_CSS = """
dl.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:8px 20px;
margin:0}
dl.summary div{min-width:0}
dl.summary dt{color:var(--muted);font-size:12px}
dl.summary dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.legend{display:flex;gap:18px;flex-wrap:wrap;font-size:12px;color:var(--muted);margin:0 0 8px}
.legend span::before{content:"";display:inline-block;width:22px;height:0;margin-right:6px;
vertical-align:middle;border-top:2px solid #334155}
.legend .failure::before{border-top-color:#dc2626}
.legend .compensation::before{border-top:2px dashed #ea580c}
.legend .terminal::before{border-top:3px solid #15803d}
.legend .terminal.bad::before{border-top-color:#b91c1c}
.diagram{overflow-x:auto}
.diagram svg{display:block}
tr.failure td.type{color:#b91c1c;font-weight:600}
tr.compensation td.type{color:#c2410c;font-style:italic}
tr.terminal td.type{font-weight:700}
.scroll{overflow-x:auto}
table.events td{white-space:nowrap}
table.events td.id{white-space:normal;overflow-wrap:anywhere;min-width:14ch}
"""

_EVENT_COLUMNS = (
    ("#", "num"),
    ("at", "num"),
    ("event type", ""),
    ("from → service", ""),
    ("topic", ""),
    ("partition", "num"),
    ("offset", "num"),
    ("timestamp", ""),
    ("event id", ""),
    ("causation id", ""),
    ("aggregate", ""),
)


def trace_path(correlation_id: str, suffix: str = "") -> str:
    """``/traces/<id>`` (+ suffix), the id percent-encoded as one path segment."""
    return f"/traces/{quote(correlation_id, safe='')}{suffix}"


def status_badge(status: Any) -> str:
    text = clean(status)
    css = text if text in STATUSES else "unknown"
    return f'<span class="badge {css}">{esc(text)}</span>'


def _summary(trace: Mapping[str, Any]) -> str:
    duration = trace.get("durationMs")
    services = trace.get("services") if isinstance(trace.get("services"), list) else []
    aggregates = trace.get("aggregateIds") if isinstance(trace.get("aggregateIds"), list) else []
    fields = [
        ("status", status_badge(trace.get("status"))),
        ("initiating event", esc(trace.get("initiatingEvent"))),
        ("duration", esc(at_ms_text(duration).lstrip("+"))),
        ("hops", esc(trace.get("hops"))),
        ("started", esc(trace.get("startedAt"))),
        ("last event", esc(trace.get("endedAt"))),
        ("services", esc(", ".join(clean(s) for s in services or []))),
        ("aggregates", esc(", ".join(clean(a) for a in aggregates or []))),
    ]
    dropped = trace.get("droppedEvents")
    if isinstance(dropped, int) and dropped > 0:
        fields.append(("events not kept", esc(dropped)))
    rows = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in fields)
    return f'<dl class="summary">{rows}</dl>'


def _events_table(events: list[Mapping[str, Any]]) -> str:
    head = "".join(
        f'<th class="{css}">{name}</th>' if css else f"<th>{name}</th>"
        for name, css in _EVENT_COLUMNS
    )
    rows = []
    for index, event in enumerate(events):
        kind = event.get("kind")
        kind = kind if isinstance(kind, str) and kind in KINDS else "normal"
        cells = (
            f'<td class="num">{index + 1}</td>'
            f'<td class="num mono">{esc(at_ms_text(event.get("atMs")))}</td>'
            f'<td class="type">{esc(event.get("eventType"))}</td>'
            f"<td>{esc(event.get('from'))} → {esc(event.get('service'))}</td>"
            f'<td class="mono">{esc(event.get("topic"))}</td>'
            f'<td class="num">{esc(event.get("partition"))}</td>'
            f'<td class="num">{esc(event.get("offset"))}</td>'
            f'<td class="mono">{esc(event.get("timestamp"))}</td>'
            f'<td class="mono id">{esc(event.get("eventId"))}</td>'
            f'<td class="mono id">{esc(event.get("causationId"))}</td>'
            f'<td class="mono id">{esc(event.get("aggregateId"))}</td>'
        )
        rows.append(
            f'<tr class="event {kind}" data-event-id="{esc(event.get("eventId"))}">{cells}</tr>'
        )
    body = "".join(rows)
    return (
        '<div class="scroll"><table class="events">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def trace_page(trace: Mapping[str, Any]) -> str:
    """The whole HTML document for one trace (the JSON of GET /traces/{id})."""
    correlation_id = clean(trace.get("correlationId"))
    events = trace.get("events")
    event_rows = [e for e in events if isinstance(e, Mapping)] if isinstance(events, list) else []
    refresh = (
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        if trace.get("status") in ("ACTIVE", "STALLED")
        else ""
    )
    end = "terminal" if trace.get("status") == "COMPLETED" else "terminal bad"
    legend = (
        '<span class="normal">normal</span><span class="failure">failure</span>'
        f'<span class="compensation">compensation</span><span class="{end}">end of the saga</span>'
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}"
        f"<title>Trace {esc(shorten_id(correlation_id))} · streamapp</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{PAGE_CSS}{_TRACE_CSS}</style></head><body>"
        '<header class="top"><a href="/">← Dashboard</a>'
        f"<h1>Trace <code>{esc(correlation_id)}</code></h1>"
        f'<a class="meta" href="{esc(trace_path(correlation_id))}">JSON</a></header>'
        "<main>"
        f'<section class="panel"><h2>Summary</h2>{_summary(trace)}</section>'
        '<section class="panel"><h2>Flow</h2>'
        f'<div class="legend">{legend}</div>'
        f'<div class="diagram">{sequence_svg(trace)}</div></section>'
        f'<section class="panel"><h2>Events ({len(event_rows)})</h2>'
        f"{_events_table(event_rows)}</section>"
        "</main></body></html>\n"
    )


def shorten_id(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
