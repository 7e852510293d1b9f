"""The status page: one self-contained HTML document (inline CSS and JS, no external fetch
but ``/api/status``), rendering the embedded JSON and refreshing it every poll interval.

Every figure is put in with ``textContent``; only the server's SVG goes in as markup. A
per-response nonce lets the inline script and style run under a strict
Content-Security-Policy.
"""

from __future__ import annotations

import json
import secrets
from html import escape
from typing import Any

from monitor.daemon.status_page.texts import TEXTS

CSS = """
:root{--up:#1a7f37;--down:#cf222e;--fg:#1f2328;--muted:#59636e;--bg:#fff;--card:#f6f8fa}
body.red-up{--up:#cf222e;--down:#1a7f37}
body{font-family:"DejaVu Sans",system-ui,sans-serif;color:var(--fg);background:var(--bg);
margin:1rem auto;max-width:960px;padding:0 1rem;font-size:14px}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:.2rem 0}
.meta{color:var(--muted)}#stale{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem;
margin:.5rem 0}#stale[hidden]{display:none}
.card{background:var(--card);border:1px solid #d0d7de;border-radius:6px;padding:.6rem;
margin:.7rem 0}.state{font-weight:bold;padding:0 .4rem;border-radius:4px;color:#fff}
.state.above{background:var(--up)}.state.below{background:var(--down)}
.state.unknown,.state.unreadable{background:var(--muted)}
.facts{display:flex;flex-wrap:wrap;gap:.2rem 1.2rem}.facts span{white-space:nowrap}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #d0d7de;margin-top:.4rem}
.grid{stroke:#eaeef2}.tick{font-size:11px;text-anchor:end;fill:var(--muted)}
.axis{font-size:11px;fill:var(--muted)}.axis.end{text-anchor:end}
.band{fill:#d4a72c;fill-opacity:.18}.threshold{stroke:#9a6700;stroke-width:1.5;
stroke-dasharray:6 3;fill:none}.thr-label{font-size:12px;fill:#9a6700;font-weight:bold}
.value{stroke:#0969da;stroke-width:2;fill:none}.now{fill:#0969da}
.mark.crossed_above path,.mark.touched_above circle{stroke:var(--up);stroke-width:2}
.mark.crossed_above path{fill:var(--up)}.mark.touched_above circle{fill:#fff}
.mark.crossed_below path{fill:var(--down);stroke:var(--down)}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.15rem .4rem;
border-bottom:1px solid #d0d7de}.problems li{color:var(--down)}
.ok{color:var(--muted)}.legend{color:var(--muted)}.legend span{font-weight:bold}
.legend .up{color:var(--up)}.legend .down{color:var(--down)}.bandkey{color:#e9d8a6}
.thrkey{color:#9a6700}
"""

JS = r"""
"use strict";
const T = JSON.parse(document.getElementById("texts").textContent);
let doc = JSON.parse(document.getElementById("initial").textContent);
let lastOk = Date.now();
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function age(iso) {
  if (!iso) return T.never;
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  const t = s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min"
    : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
  return t + " " + T.ago;
}
function quoteText(q) {
  if (!q) return "";
  if (q.decision === "confirmed" && q.confirmed_by.length)
    return T.quote + ": " + q.source + ", " + T.confirmed + " " + q.confirmed_by.join(", ");
  if (q.decision === "single") return T.quote + ": " + q.source + ", " + T.single;
  return T.quote + ": " + q.source + ", " + T.unconfirmed + " (" + q.decision + ")";
}
function ruleCard(r) {
  const card = el("section", "card rule");
  card.dataset.rule = r.rule;
  const h = el("h2");
  h.append(el("span", "rule-id", r.rule), " ");
  if (r.label) h.append(el("span", "label", r.label), " ");
  h.append(el("span", "meta", r.symbol), " ");
  const st = T[r.state] || r.state;
  h.append(el("span", "state " + r.state, st));
  card.append(h);
  const f = el("div", "facts");
  const x = r.text || {};
  if (x.since) f.append(el("span", "since", T.since + " " + x.since));
  const asOf = r.as_of ? " (" + r.as_of + ")" : "";
  if (x.value) f.append(el("span", "value", T.now + " " + x.value + asOf));
  if (x.threshold) f.append(el("span", "threshold", T.threshold + " " + x.threshold));
  if (x.distance) f.append(el("span", "distance", T.distance + " " + x.distance));
  if (x.needs_price) f.append(el("span", "needs",
    (r.state === "above" ? T.falls_below_under : T.needs) + " " + x.needs_price));
  const q = quoteText(r.quote);
  if (q) f.append(el("span", "quote", q));
  card.append(f);
  const c = el("div", "chart-box");
  if (r.chart) c.innerHTML = r.chart.svg;  // drawn and escaped by the server
  card.append(c);
  return card;
}
function table(head, rows) {
  const t = el("table"), tr = el("tr");
  head.forEach(h => tr.append(el("th", "", h)));
  t.append(tr);
  rows.forEach(r => {
    const row = el("tr");
    r.forEach(v => row.append(el("td", "", v)));
    t.append(row);
  });
  return t;
}
function render() {
  document.getElementById("updated").textContent =
    T.updated + " " + doc.generated_at.slice(0, 19).replace("T", " ") + " UTC · " +
    T.data_as_of + " " + (doc.data_as_of ? doc.data_as_of.slice(0, 16).replace("T", " ") +
    " UTC (" + age(doc.data_as_of) + ")" : T.never);
  const hl = doc.health, hs = document.getElementById("health");
  hs.replaceChildren(el("h2", "", T.health + ": " + (hl.healthy ? T.healthy : hl.status)));
  for (const kind of ["problems", "warnings"]) {
    if (!hl[kind].length) continue;
    const u = el("ul", kind);
    hl[kind].forEach(p => u.append(el("li", "", p)));
    hs.append(el("h3", "", T[kind]), u);
  }
  document.getElementById("rules").replaceChildren(...doc.rules.map(ruleCard));
  document.getElementById("symbols").replaceChildren(el("h2", "", T.symbols), table(
    [T.symbol, T.status, T.quote, T.observed],
    doc.symbols.map(s => [s.symbol + " " + s.name, (T[s.status] || s.status) +
      (s.error ? ": " + s.error : ""), quoteText(s.quote) || s.source || "",
      s.observed_at ? s.observed_local + " (" + age(s.observed_at) + ")" : T.never])));
  document.getElementById("sources").replaceChildren(el("h2", "", T.sources), table(
    [T.source, T.last_success, T.last_error],
    doc.sources.map(s => [s.name, age(s.last_success), s.last_error])));
  const ev = document.getElementById("events");
  ev.replaceChildren(el("h2", "", T.events));
  if (!doc.events.length) ev.append(el("p", "ok", T.no_events));
  else ev.append(table([T.time, T.rule, T.event, T.value, T.threshold],
    doc.events.slice().reverse().map(e =>
      [e.as_of, e.rule, T[e.kind] || e.kind, e.value_text, e.threshold_text])));
  const o = doc.outbox, ob = document.getElementById("outbox");
  ob.replaceChildren(el("h2", "", T.outbox), el("p", "counts",
    o.pending + " " + T.pending + " · " + (o.delivered || 0) + " " + T.delivered + " · " +
    o.dead + " " + T.dead));
  const dead = o.dead_rows.map(d => [d.sink, d.kind, d.attempts, d.error]);
  if (dead.length) ob.append(table([T.sink, T.event, T.attempts, T.error], dead));
  checkStale();
}
function checkStale() {
  const late = Date.now() - lastOk > 3 * interval() * 1000;
  document.getElementById("stale").hidden = !(late || doc.stale_reason);
}
function interval() { return Math.min(60, Math.max(2, doc.poll_interval || 60)); }
async function refresh() {
  try {
    const r = await fetch("api/status", {credentials: "same-origin", cache: "no-store"});
    if (r.ok) { doc = await r.json(); lastOk = Date.now(); render(); }
  } catch (e) { /* the stale banner says it */ }
  checkStale();
  setTimeout(refresh, interval() * 1000);
}
render();
setTimeout(refresh, interval() * 1000);
"""


def csp(nonce: str) -> str:
    """Nothing but this page's own script, style, and requests to its own origin."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def _embed(data: Any) -> str:
    # inside <script>: "</script>" in a string must not end the element
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def render_page(doc: dict[str, Any]) -> tuple[bytes, str]:
    """(the HTML, its nonce for the Content-Security-Policy header)."""
    nonce = secrets.token_urlsafe(16)
    lang = str(doc.get("language", "en"))
    texts = TEXTS.get(lang, TEXTS["en"])
    body_class = "red-up" if doc.get("red_up") else "green-up"
    html = f"""<!doctype html>
<html lang="{escape(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(texts["title"])}</title><link rel="icon" href="data:,">
<style nonce="{nonce}">{CSS}</style></head>
<body class="{body_class}">
<header><h1>{escape(texts["title"])}</h1><div id="updated" class="meta"></div>
<div id="stale" hidden>{escape(texts["stale_banner"])}</div>
<noscript>{escape(texts["noscript"])}</noscript></header>
<section id="health"></section>
<p class="legend"><span class="up">○</span> {escape(texts["touched_above"])}
<span class="up">▲</span> {escape(texts["crossed_above"])}
<span class="down">▼</span> {escape(texts["crossed_below"])}
<span class="bandkey">■</span> {escape(texts["band"])}
<span class="thrkey">- -</span> {escape(texts["threshold"])}</p>
<div id="rules"></div><section id="symbols"></section>
<section id="sources"></section><section id="events"></section><section id="outbox"></section>
<script type="application/json" id="texts">{_embed(texts)}</script>
<script type="application/json" id="initial">{_embed(doc)}</script>
<script nonce="{nonce}">{JS}</script>
</body></html>
"""
    return html.encode(), nonce
