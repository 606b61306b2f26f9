"""Exports of a scope's knowledge graph: JSON, GraphML and a self-contained HTML page.

- ``json``: entities (with aliases, type, summary, community), relations (with validity and
  the fact that states them), episode links and the community hierarchy.
- ``graphml``: a networkx ``MultiDiGraph`` written by networkx (Gephi, yEd, Cytoscape read it).
- ``html``: one file that opens offline in any browser, with no CDN and no server: the data
  sits in a JSON island (``<`` ``>`` ``&`` escaped, so no name can close the script), the
  layout is computed here (networkx spring layout, seeded), and about 150 lines of plain
  JavaScript draw it as SVG with pan, zoom, node dragging, a search box, and a side panel
  for the clicked entity (relations, aliases, community summary) or relation (when it held,
  the fact stating it; inside a frame, its fact ids are posted to the parent page, which is
  how the ``/ui`` inspector opens the facts behind an edge). All text is inserted with
  ``textContent``, never as HTML.

Large graphs are cut to the ``max_nodes`` most connected entities (the page says how many
were left out).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agentmem.errors import ValidationError
from agentmem.graph.state import GraphState

if TYPE_CHECKING:
    import networkx as nx

_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_NODES = 400


class ExportFormat(StrEnum):
    """The formats ``mem.graph.export`` writes."""

    JSON = "json"
    GRAPHML = "graphml"
    HTML = "html"

    @classmethod
    def parse(cls, value: str | ExportFormat) -> ExportFormat:
        """Parse a format name, raising :class:`ValidationError` with the allowed values."""
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(f.value for f in cls)
            raise ValidationError(
                f"unknown export format {value!r}; use one of: {allowed}"
            ) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def graph_document(states: Sequence[GraphState]) -> dict[str, Any]:
    """The JSON export of these partitions."""
    entities, relations, episodes, communities = [], [], [], []
    for state in states:
        community_of = {
            e: c.id for c in state.communities.values() if c.level == 0 for e in c.members
        }
        for entity in sorted(state.entities.values(), key=lambda e: (e.name, e.id)):
            entities.append(
                {
                    "id": entity.id,
                    "name": entity.name,
                    "type": entity.type,
                    "aliases": entity.aliases,
                    "summary": entity.summary,
                    "facts": len(entity.fact_ids),
                    "fact_ids": entity.fact_ids,
                    "community": community_of.get(entity.id),
                    "scope": entity.scope.fields(),
                }
            )
        for r in sorted(state.relations.values(), key=lambda r: r.id):
            relations.append(
                {
                    "id": r.id,
                    "source": r.source,
                    "target": r.target,
                    "predicate": r.predicate,
                    "fact": r.fact,
                    "fact_ids": r.fact_ids,
                    "episode_ids": r.episode_ids,
                    "valid_from": _iso(r.valid_from),
                    "valid_to": _iso(r.valid_to),
                    "created_at": _iso(r.created_at),
                    "invalidated_at": _iso(r.invalidated_at),
                }
            )
        for link in sorted(state.links.values(), key=lambda x: x.id):
            episodes.append({"id": link.id, "entities": link.entity_ids, "facts": link.fact_ids})
        for c in sorted(state.communities.values(), key=lambda c: (c.level, c.id)):
            communities.append(
                {
                    "id": c.id,
                    "level": c.level,
                    "parent": c.parent,
                    "members": c.members,
                    "size": c.size,
                    "summary": c.summary,
                    "top_entities": c.top_entities,
                    "top_predicates": c.top_predicates,
                }
            )
    return {
        "format": "agentmem-knowledge-graph",
        "version": 1,
        "scopes": [s.scope.fields() for s in states],
        "entities": entities,
        "relations": relations,
        "episodes": episodes,
        "communities": communities,
    }


def to_json(states: Sequence[GraphState]) -> str:
    """The JSON export, indented."""
    return json.dumps(graph_document(states), indent=2, ensure_ascii=False)


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    return _XML_BAD.sub("", str(value))


def to_networkx(states: Sequence[GraphState]) -> nx.MultiDiGraph:
    """Every partition as one ``MultiDiGraph`` with string attributes (GraphML-ready)."""
    import networkx as nx

    out = nx.MultiDiGraph()
    doc = graph_document(states)
    for e in doc["entities"]:
        out.add_node(
            e["id"],
            name=_xml_text(e["name"]),
            type=_xml_text(e["type"]),
            aliases=_xml_text(e["aliases"]),
            summary=_xml_text(e["summary"]),
            facts=int(e["facts"]),
            community=_xml_text(e["community"]),
            scope=_xml_text(",".join(f"{k}={v}" for k, v in e["scope"].items())),
        )
    for r in doc["relations"]:
        out.add_edge(
            r["source"],
            r["target"],
            key=r["id"],
            predicate=_xml_text(r["predicate"]),
            fact=_xml_text(r["fact"]),
            fact_ids=_xml_text(r["fact_ids"]),
            valid_from=_xml_text(r["valid_from"]),
            valid_to=_xml_text(r["valid_to"]),
            created_at=_xml_text(r["created_at"]),
            invalidated_at=_xml_text(r["invalidated_at"]),
        )
    return out


def to_graphml(states: Sequence[GraphState]) -> str:
    """The GraphML export."""
    import networkx as nx

    buffer = io.BytesIO()
    nx.write_graphml(to_networkx(states), buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")


def _page_data(states: Sequence[GraphState], max_nodes: int, title: str) -> dict[str, Any]:
    import networkx as nx

    doc = graph_document(states)
    simple = nx.Graph()
    for e in doc["entities"]:
        simple.add_node(e["id"])
    for r in doc["relations"]:
        if r["source"] != r["target"]:
            simple.add_edge(r["source"], r["target"])
    ranked = sorted(simple.nodes, key=lambda n: (-simple.degree(n), n))
    keep = set(ranked[:max_nodes])
    isolated = sorted(n for n in keep if simple.degree(n) == 0)
    sub = nx.Graph(simple.subgraph(keep - set(isolated)))
    # A hidden hub tied to each component's best-connected entity keeps separate components
    # near each other instead of flung to the corners.
    hub = ("layout hub",)
    for component in list(nx.connected_components(sub)):
        sub.add_edge(hub, max(component, key=lambda n: (simple.degree(n), n)), weight=0.5)
    positions = nx.spring_layout(sub, seed=7, iterations=100) if len(sub) else {}
    positions.pop(hub, None)
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    # entities without relations: one row under the drawing
    width = max(max(xs) - min(xs), 1.0)
    for i, node in enumerate(isolated):
        positions[node] = (min(xs) + width * (i % 12) / 12, max(ys) + 0.15 * (1 + i // 12))
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    communities = {c["id"]: c for c in doc["communities"]}
    nodes = []
    for e in doc["entities"]:
        if e["id"] not in keep:
            continue
        x, y = positions.get(e["id"], (0.0, 0.0))
        community = communities.get(e["community"] or "")
        nodes.append(
            {
                "id": e["id"],
                "name": e["name"],
                "type": e["type"],
                "aliases": e["aliases"],
                "summary": e["summary"],
                "facts": e["facts"],
                "community": e["community"],
                "community_summary": community["summary"] if community else "",
                "x": round(((x - min(xs)) / span) * 1000, 2),
                "y": round(((y - min(ys)) / span) * 1000, 2),
            }
        )
    edges = [
        {
            "id": r["id"],
            "fact_ids": r["fact_ids"],
            "episode_ids": r["episode_ids"],
            "source": r["source"],
            "target": r["target"],
            "predicate": r["predicate"],
            "fact": r["fact"],
            "valid_from": r["valid_from"],
            "valid_to": r["valid_to"],
            "current": r["invalidated_at"] is None,
        }
        for r in doc["relations"]
        if r["source"] in keep and r["target"] in keep
    ]
    return {
        "title": title,
        "nodes": nodes,
        "edges": edges,
        "omitted": len(doc["entities"]) - len(nodes),
        "communities": len([c for c in doc["communities"] if c["level"] == 0]),
    }


def _script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` survive, so no text can end the
    script element or open a comment."""
    text = json.dumps(data, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def to_html(states: Sequence[GraphState], *, title: str = "agentmem knowledge graph",
            max_nodes: int = MAX_NODES) -> str:  # fmt: skip
    """The interactive, self-contained HTML page."""
    data = _page_data(states, max_nodes, title)
    safe_title = (
        title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
    values = {"TITLE": safe_title, "DATA": _script_json(data)}
    return re.sub(r"__(TITLE|DATA)__", lambda m: values[m.group(1)], _PAGE)


def script_hashes() -> list[str]:
    """Content-Security-Policy sources (``'sha256-...'``) of the HTML page's inline script, so
    a server can show the page under a policy that allows no other inline script."""
    found = re.findall(r"<script>(.*?)</script>", _PAGE, flags=re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in found
    ]


def export(states: Sequence[GraphState], fmt: str | ExportFormat, *, title: str = "",
           max_nodes: int = MAX_NODES) -> str:  # fmt: skip
    """The graph in ``fmt`` (``json``, ``graphml`` or ``html``)."""
    chosen = ExportFormat.parse(fmt)
    if chosen is ExportFormat.JSON:
        return to_json(states)
    if chosen is ExportFormat.GRAPHML:
        return to_graphml(states)
    return to_html(states, title=title or "agentmem knowledge graph", max_nodes=max_nodes)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  html, body { margin: 0; height: 100%; font: 13px system-ui, sans-serif; color: #222; }
  #app { display: flex; height: 100%; }
  #canvas { flex: 1; background: #fbfbfd; cursor: grab; }
  #side { width: 320px; padding: 12px; border-left: 1px solid #ddd; overflow: auto; }
  #side h2 { font-size: 16px; margin: 4px 0; }
  #side .muted { color: #777; }
  #side li { margin: 3px 0; }
  input { width: 100%; box-sizing: border-box; padding: 6px; margin-bottom: 8px; }
  .edge { stroke: #b9bdc7; stroke-width: 1; vector-effect: non-scaling-stroke; }
  .edge.past { stroke-dasharray: 4 3; }
  .edge.hot, .edge.picked { stroke: #444; stroke-width: 2; }
  .edge-hit { stroke: transparent; stroke-width: 9; cursor: pointer;
              vector-effect: non-scaling-stroke; }
  .node circle { stroke: #fff; stroke-width: 1.5; cursor: pointer; }
  .node text { font-size: 11px; pointer-events: none; fill: #333; }
  .node.dim { opacity: 0.18; }
  .node.hit circle { stroke: #000; stroke-width: 3; }
</style>
</head>
<body>
<div id="app">
  <svg id="canvas" role="img" aria-label="knowledge graph"><g id="view"></g></svg>
  <div id="side">
    <input id="search" type="search" placeholder="find an entity" autocomplete="off">
    <div id="summary" class="muted"></div>
    <div id="details"></div>
  </div>
</div>
<script type="application/json" id="graph-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("canvas"), view = document.getElementById("view");
  var palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                 "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  var communityColour = {}, nextColour = 0, byId = {}, edgeEls = [], nodeEls = {};
  function colour(c) {
    if (!c) { return "#999"; }
    if (!(c in communityColour)) { communityColour[c] = palette[nextColour++ % palette.length]; }
    return communityColour[c];
  }
  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function html(tag, text, parent) {
    var e = document.createElement(tag);
    e.textContent = text;
    if (parent) { parent.appendChild(e); }
    return e;
  }
  document.getElementById("summary").textContent = data.nodes.length + " entities, " +
    data.edges.length + " relations, " + data.communities + " communities" +
    (data.omitted ? " (" + data.omitted + " less connected entities left out)" : "");
  var edgeLayer = el("g", {}, view), nodeLayer = el("g", {}, view);
  data.nodes.forEach(function (n) { byId[n.id] = n; n.links = []; });
  data.edges.forEach(function (e) {
    var a = byId[e.source], b = byId[e.target];
    if (!a || !b) { return; }
    var line = el("line", {"class": "edge" + (e.current ? "" : " past")}, edgeLayer);
    var hit = el("line", {"class": "edge-hit", "data-id": e.id}, edgeLayer);
    var tip = el("title", {}, hit);
    tip.textContent = a.name + " " + e.predicate + " " + b.name + (e.fact ? ": " + e.fact : "");
    hit.addEventListener("mousedown", function (ev) { ev.stopPropagation(); });
    hit.addEventListener("click", function () { showEdge(e); });
    e.el = line; e.hit = hit; e.a = a; e.b = b; edgeEls.push(e);
    a.links.push(e); b.links.push(e);
  });
  data.nodes.forEach(function (n) {
    var g = el("g", {"class": "node", "data-id": n.id}, nodeLayer);
    el("circle", {r: 4 + Math.min(14, Math.sqrt(n.facts) * 1.6), fill: colour(n.community)}, g);
    var label = el("text", {dx: 9, dy: 4}, g);
    label.textContent = n.name;
    var tip = el("title", {}, g);
    tip.textContent = n.name + " (" + n.type + ", " + n.facts + " facts)";
    n.el = g; nodeEls[n.id] = g;
    g.addEventListener("mousedown", function (ev) { ev.stopPropagation(); drag = n; });
    g.addEventListener("click", function () { show(n); });
  });
  // Nodes and labels keep their size on screen at any zoom (a small frame or a large graph
  // shrinks the layout, not the text); zooming spreads them apart.
  function draw() {
    data.nodes.forEach(function (n) {
      n.el.setAttribute("transform", "translate(" + n.x + "," + n.y + ") scale(" + 1 / scale + ")");
    });
    edgeEls.forEach(function (e) {
      [e.el, e.hit].forEach(function (line) {
        line.setAttribute("x1", e.a.x); line.setAttribute("y1", e.a.y);
        line.setAttribute("x2", e.b.x); line.setAttribute("y2", e.b.y);
      });
    });
  }
  function validity(e) {
    var until = e.valid_to ? " to " + e.valid_to.slice(0, 10) : "";
    return e.valid_from ? " [" + e.valid_from.slice(0, 10) + until + "]" : "";
  }
  // An edge's panel: the relation, when it held, and the facts that state it. Inside the
  // /ui inspector (a frame) the facts' ids go to the page, which opens them.
  function showEdge(e) {
    var box = document.getElementById("details");
    box.textContent = "";
    html("h2", e.a.name + " " + e.predicate + " " + e.b.name, box);
    html("div", (e.current ? "holds" : "ended") + validity(e), box).className = "muted";
    if (e.fact) { html("p", e.fact, box); }
    html("div", e.fact_ids.length + " fact(s), " + e.episode_ids.length + " episode(s)",
         box).className = "muted";
    edgeEls.forEach(function (x) { x.el.classList.toggle("picked", x === e); });
    if (window.parent !== window) {
      window.parent.postMessage({type: "agentmem:edge", id: e.id, predicate: e.predicate,
        source: e.a.name, target: e.b.name, fact: e.fact, fact_ids: e.fact_ids,
        episode_ids: e.episode_ids, valid_from: e.valid_from, valid_to: e.valid_to,
        current: e.current}, "*");
    }
  }
  function show(n) {
    var box = document.getElementById("details");
    box.textContent = "";
    html("h2", n.name, box);
    html("div", n.type + " - " + n.facts + " facts", box).className = "muted";
    if (n.aliases.length) { html("div", "also: " + n.aliases.join(", "), box); }
    if (n.summary) { html("p", n.summary, box); }
    if (n.community_summary) {
      html("p", "community: " + n.community_summary, box).className = "muted";
    }
    var list = html("ul", "", box);
    n.links.forEach(function (e) {
      var other = e.a === n ? e.b : e.a, dir = e.a === n ? "-> " : "<- ";
      html("li", dir + e.predicate + " " + other.name + validity(e), list);
    });
    var near = {}; near[n.id] = true;
    n.links.forEach(function (e) { near[e.a.id] = true; near[e.b.id] = true; });
    data.nodes.forEach(function (m) { m.el.classList.toggle("dim", !near[m.id]); });
    edgeEls.forEach(function (e) { e.el.classList.toggle("hot", e.a === n || e.b === n); });
  }
  document.getElementById("search").addEventListener("input", function (ev) {
    var q = ev.target.value.trim().toLowerCase();
    data.nodes.forEach(function (n) {
      var hit = q && (n.name.toLowerCase().indexOf(q) >= 0 ||
        n.aliases.some(function (a) { return a.toLowerCase().indexOf(q) >= 0; }));
      n.el.classList.toggle("hit", !!hit);
    });
  });
  var scale = 1, tx = 0, ty = 0, drag = null, pan = null;
  function fit() {
    var r = svg.getBoundingClientRect(), w = r.width || 800, h = r.height || 600;
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    data.nodes.forEach(function (n) {
      x0 = Math.min(x0, n.x); x1 = Math.max(x1, n.x);
      y0 = Math.min(y0, n.y); y1 = Math.max(y1, n.y);
    });
    if (!data.nodes.length) { x0 = y0 = 0; x1 = y1 = 1000; }
    var bw = Math.max(x1 - x0, 1), bh = Math.max(y1 - y0, 1);
    scale = Math.min((w - 120) / bw, (h - 60) / bh, 4);  // room for labels on the right
    tx = (w - 80 - bw * scale) / 2 - x0 * scale; ty = (h - bh * scale) / 2 - y0 * scale;
    apply();
  }
  function apply() {
    view.setAttribute("transform", "translate(" + tx + "," + ty + ") scale(" + scale + ")");
    draw();
  }
  function point(ev) { return {x: (ev.clientX - svg.getBoundingClientRect().left - tx) / scale,
                               y: (ev.clientY - svg.getBoundingClientRect().top - ty) / scale}; }
  svg.addEventListener("mousedown", function (ev) {
    pan = {x: ev.clientX - tx, y: ev.clientY - ty};
  });
  window.addEventListener("mousemove", function (ev) {
    if (drag) { var p = point(ev); drag.x = p.x; drag.y = p.y; draw(); }
    else if (pan) { tx = ev.clientX - pan.x; ty = ev.clientY - pan.y; apply(); }
  });
  window.addEventListener("mouseup", function () { drag = null; pan = null; });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var p = point(ev), f = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
    scale *= f; tx -= p.x * scale * (1 - 1 / f); ty -= p.y * scale * (1 - 1 / f); apply();
  }, {passive: false});
  window.addEventListener("resize", fit);
  draw(); fit();
  var wanted = decodeURIComponent((location.hash.match(/select=([^&]*)/) || [])[1] || "");
  data.nodes.forEach(function (n) { if (wanted && n.name === wanted) { show(n); } });
  document.body.setAttribute("data-rendered", String(data.nodes.length));
})();
</script>
</body>
</html>
"""


__all__ = [
    "MAX_NODES",
    "ExportFormat",
    "export",
    "graph_document",
    "script_hashes",
    "to_graphml",
    "to_html",
    "to_json",
    "to_networkx",
]
