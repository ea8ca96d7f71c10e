"""The dashboard page (pure): one HTML document with inline CSS and script.

No external asset, so it works offline. The page holds no data: its script polls
``GET /dashboard/data`` every ``REFRESH_MS`` and draws the answer with DOM methods and
``textContent`` only (every string there comes from Kafka records or peers), never
``innerHTML``. The script's hash goes into the Content-Security-Policy header, so the
browser runs that script and nothing else.
"""

from __future__ import annotations

import base64
import hashlib

from streamapp.tracing.diagram import esc
from streamapp.tracing.trace_html import PAGE_CSS

DATA_PATH = "/dashboard/data"
REFRESH_MS = 3000
TRACES_SHOWN = 20

_CSS = """
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px;
margin-bottom:16px;align-items:start}
.grid.wide{grid-template-columns:minmax(0,1.3fr) minmax(0,1fr) minmax(0,1.2fr)}
@media (max-width:1100px){.grid.wide{grid-template-columns:minmax(0,1fr)}}
.scroll{overflow-x:auto}
.note{color:var(--muted);font-size:12px}
.tile.COMPLETED .value{color:#166534}
.tile.FAILED .value{color:#b91c1c}
.grid section.panel{margin:0}
.tiles{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:8px}
.tile{border:1px solid var(--line);border-radius:6px;padding:6px 10px;background:#f8fafc;
min-width:0}
.tile .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tile .value{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}
.tile .name{font-size:12px;color:var(--muted)}
.tile.SagaCompleted .value{color:#166534}
.tile.SagaCompensated .value,.tile.COMPENSATING .value,.tile.COMPENSATED .value{color:#c2410c}
.tile.SagaFailed .value{color:#b91c1c}
.big{font-size:30px;font-weight:700;font-variant-numeric:tabular-nums}
.big small{font-size:13px;color:var(--muted);font-weight:500}
h3{font-size:12px;color:var(--muted);margin:12px 0 6px;font-weight:600}
.empty{color:var(--muted);font-style:italic}
.banner{display:none;background:#fee2e2;color:#991b1b;border:1px solid #fecaca;
border-radius:6px;padding:8px 12px;margin-bottom:16px}
.banner.on{display:block}
#updated.stale{color:#fca5a5}
"""

SCRIPT = """
(function () {
  "use strict";
  var REFRESH_MS = __REFRESH_MS__;
  var DATA = "__DATA_PATH__";
  var refreshes = 0;
  var prefix = "";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function show(id, node) {
    var box = document.getElementById(id);
    box.replaceChildren(node);
  }
  function empty(text) { return el("p", "empty", text); }
  function num(value, digits) {
    if (value === null || value === undefined) { return "\\u2014"; }
    return Number(value).toLocaleString(
      "en-US", {minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0});
  }
  function topic(name) {
    name = String(name);
    return prefix && name.indexOf(prefix) === 0 ? name.slice(prefix.length) : name;
  }
  function table(headers, rows, numeric) {
    var wrap = el("div", "scroll"), t = el("table"), head = el("tr");
    headers.forEach(function (h, i) {
      head.appendChild(el("th", numeric && numeric[i] ? "num" : "", h));
    });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (cell, i) {
        var td = el("td", numeric && numeric[i] ? "num" : "");
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    wrap.appendChild(t);
    return wrap;
  }
  function badge(text, css) { return el("span", "badge " + css, text); }
  function traceLink(id) {
    var a = el("a", "mono", id);
    a.href = "/traces/" + encodeURIComponent(id) + "/view";
    return a;
  }

  function drawWorkers(workers) {
    if (!workers.length) { show("workers", empty("no workers known yet")); return; }
    show("workers", table(["service", "worker", "state", "records/s", "note"],
      workers.map(function (w) {
        var label = {ready: "ready", waiting: "not ready", down: "down"}[w.state] || w.state;
        var note = el("span", "note", w.error || (w.waitingFor || []).join(", "));
        var host = String(w.url).replace("http://", "").replace("https://", "");
        var where = el("span", "mono", host);
        where.title = w.url;
        return [w.service || "?", where, badge(label, w.state), num(w.recordsPerSecond, 1), note];
      }), [false, false, false, true, false]));
    document.querySelectorAll("#workers tbody tr").forEach(function (tr, i) {
      tr.dataset.url = String(workers[i].url);
    });
  }
  function drawThroughput(t) {
    var box = el("div");
    var big = el("div", "big", num(t.total, 1));
    big.appendChild(el("small", "", " records/s"));
    box.appendChild(big);
    if (t.agents.length) {
      box.appendChild(table(["agent", "records/s"], t.agents.map(function (a) {
        return [a.agent, num(a.perSecond, 1)];
      }), [false, true]));
    } else {
      box.appendChild(empty(t.total === null ? "measuring\\u2026" : "no agent counted yet"));
    }
    show("throughput", box);
  }
  function tiles(items, key) {
    var box = el("div", "tiles");
    items.forEach(function (item) {
      var name = String(item[key]);
      var tile = el("div", "tile " + name);
      tile.title = name;
      tile.appendChild(el("div", "value", num(item.count)));
      tile.appendChild(el("div", "name", name.replace(/^Saga/, "").toLowerCase()));
      box.appendChild(tile);
    });
    return box;
  }
  function drawSagas(s) {
    var box = el("div");
    var flying = el("h3", "", "in flight, by state");
    flying.title = "sagas awaiting a reply, a compensation or the confirmation of their end";
    box.appendChild(flying);
    box.appendChild(tiles(s.inFlight, "state"));
    box.appendChild(el("h3", "", "ended (since the workers started)"));
    box.appendChild(tiles(s.ended, "outcome"));
    show("sagas", box);
  }
  function drawTraces(traces, error) {
    var box = el("div");
    if (error) { box.appendChild(el("p", "empty", "traces unavailable: " + error)); }
    if (!traces.length) {
      if (!error) { box.appendChild(empty("no trace yet")); }
    } else {
      box.appendChild(table(
        ["correlation id", "status", "initiating event", "started", "duration", "services",
         "events"],
        traces.map(function (t) {
          var row = [traceLink(String(t.correlationId)), badge(t.status, t.status),
            t.initiatingEvent, t.startedAt, num(t.durationMs) + " ms", t.services.join(" \\u2192 "),
            num(t.events)];
          return row;
        }), [false, false, false, false, true, false, true]));
      box.querySelectorAll("tbody tr").forEach(function (tr, i) {
        tr.className = "trace";
        tr.dataset.correlationId = String(traces[i].correlationId);
      });
    }
    show("traces", box);
  }
  function perTopic(id, rows, what) {
    if (!rows.length) { show(id, empty("none")); return; }
    show(id, table(["topic", what, "by"], rows.map(function (r) {
      var by = Object.keys(r.by).map(function (k) { return k + ": " + r.by[k]; }).join(", ");
      return [topic(r.topic), num(r.count), by];
    }), [false, true, false]));
  }
  function drawLag(rows) {
    if (!rows.length) { show("lag", empty("no lag reported")); return; }
    var behind = rows.filter(function (r) { return r.lag > 0; });
    behind.sort(function (a, b) { return b.lag - a.lag; });
    var box = el("div");
    if (behind.length) {
      box.appendChild(table(["service", "topic", "lag", "partitions"], behind.map(function (r) {
        return [r.service, topic(r.topic), num(r.lag), num(r.partitions)];
      }), [false, false, true, true]));
    }
    var caught = rows.length - behind.length;
    if (caught) {
      box.appendChild(empty((behind.length ? "the other " : "all ") + caught +
        " topic" + (caught === 1 ? "" : "s") + " consumed: no lag"));
    }
    show("lag", box);
  }
  function draw(d) {
    prefix = d.topicPrefix || "";
    drawWorkers(d.workers);
    drawThroughput(d.throughput);
    drawSagas(d.sagas);
    drawTraces(d.traces, d.tracesError);
    perTopic("retries", d.retries, "retries");
    perTopic("deadletters", d.deadLetters, "dead letters");
    drawLag(d.lag);
  }
  function status(ok, text) {
    var banner = document.getElementById("banner");
    banner.textContent = ok ? "" : text;
    banner.className = ok ? "banner" : "banner on";
    document.getElementById("updated").className = ok ? "" : "stale";
  }
  function refresh() {
    fetch(DATA, {cache: "no-store", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (d) {
        draw(d);
        refreshes += 1;
        document.body.dataset.refreshes = String(refreshes);
        document.getElementById("updated").textContent =
          "updated " + new Date().toLocaleTimeString("en-GB");
        status(true, "");
      })
      .catch(function (err) {
        status(false, "cannot reach this worker (" + err.message + "); retrying");
      })
      .then(function () { window.setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
""".replace("__REFRESH_MS__", str(REFRESH_MS)).replace("__DATA_PATH__", DATA_PATH)

#: The CSP hash of SCRIPT: the browser runs that exact script and no other.
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src '{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:"
)


def _panel(title: str, box_id: str) -> str:
    return (
        f'<section class="panel"><h2>{title}</h2>'
        f'<div id="{box_id}"><p class="empty">loading…</p></div></section>'
    )


def dashboard_page(app_id: str) -> str:
    """The dashboard document (`app_id` names the deployment in the title)."""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>streamapp dashboard · {esc(app_id)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{PAGE_CSS}{_CSS}</style></head><body>"
        f'<header class="top"><h1>streamapp</h1><span>{esc(app_id)}</span>'
        f'<span class="meta"><span id="updated">loading…</span> · every {REFRESH_MS // 1000} s'
        ' · <a href="/openapi.json">API</a> · <a href="/metrics">metrics</a></span></header>'
        '<main><div id="banner" class="banner" role="alert"></div>'
        '<div class="grid wide">'
        f"{_panel('Workers', 'workers')}{_panel('Throughput', 'throughput')}"
        f"{_panel('Sagas', 'sagas')}"
        "</div>"
        f"{_panel(f'Recent traces (newest {TRACES_SHOWN})', 'traces')}"
        '<div class="grid">'
        f"{_panel('Retries per topic', 'retries')}{_panel('Dead letters per topic', 'deadletters')}"
        f"{_panel('Consumer lag', 'lag')}"
        "</div></main>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
