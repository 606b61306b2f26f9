// agentmem memory inspector. Plain JavaScript, no build step, no dependencies (formatted with
// `npx prettier --print-width 100`).
// Everything shown comes from this server's /v1 REST API, called with the API key typed in;
// every text is inserted with textContent (never as HTML), since memory holds what anyone
// wrote.
"use strict";
(function () {
  const KEY = "agentmem-api-key";
  const KINDS = ["episodic", "semantic", "procedural", "experience"];
  // Channel order and colours of the search explanation.
  const CHANNELS = [
    "dense",
    "bm25",
    "window",
    "window_bm25",
    "time",
    "graph",
    "links",
    "recency",
    "importance",
    "utility",
    "quarantine",
  ];
  const COLOURS = [
    "#4e79a7",
    "#f28e2b",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#e15759",
    "#b07aa1",
    "#9c755f",
    "#bab0ac",
    "#ff9da7",
    "#888888",
  ];
  const state = {
    key: sessionStorage.getItem(KEY),
    who: null,
    scope: null,
    ranking: null,
    nextOffset: null,
    memoryId: null,
  };
  const $ = (selector) => document.querySelector(selector);

  // -- small helpers --------------------------------------------------------------------

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(typeof iso === "number" ? iso * 1000 : iso);
    return d.toISOString().slice(0, 16).replace("T", " ");
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  }
  function num(x, digits) {
    return x === null || x === undefined ? "" : x.toFixed(digits);
  }
  function scopeLabel(scope) {
    return Object.entries(scope)
      .filter(([, v]) => v)
      .map(([k, v]) => k + "=" + v)
      .join(" \u00b7 ");
  }

  function status(message, isError) {
    const box = $("#status");
    box.textContent = message || "";
    box.className = isError ? "error" : "";
  }

  // Loaders run again after every action; only the latest call of each may draw, or a slow
  // answer to an earlier call would paint what is no longer there.
  const tickets = {};
  function ticket(name) {
    const mine = (tickets[name] || 0) + 1;
    tickets[name] = mine;
    return () => tickets[name] === mine;
  }

  async function guarded(action) {
    try {
      return await action();
    } catch (err) {
      status(err.message, true);
      return undefined;
    }
  }

  // -- the REST API -----------------------------------------------------------------------

  async function api(method, path, options) {
    const { query, body } = options || {};
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value === null || value === undefined || value === "") continue;
      for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, v);
    }
    const headers = { Authorization: "Bearer " + state.key };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.statusText;
      const error = new Error(response.status + ": " + message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function scopeFields() {
    const out = {};
    for (const [k, v] of Object.entries(state.scope || {})) if (v) out[k] = v;
    return out;
  }
  const get = (path, query) => api("GET", path, { query: { ...scopeFields(), ...query } });
  const post = (path, body) => api("POST", path, { body: { ...scopeFields(), ...body } });

  // -- signing in -------------------------------------------------------------------------

  async function signIn(token) {
    state.key = token;
    try {
      state.who = await api("GET", "/v1/whoami");
    } catch (err) {
      sessionStorage.removeItem(KEY);
      state.key = null;
      $("#login-error").textContent =
        err.status === 401 ? "This key is unknown, malformed or revoked." : err.message;
      return;
    }
    sessionStorage.setItem(KEY, token);
    $("#login").hidden = true;
    $("#main").hidden = false;
    $("#sign-out").hidden = false;
    const bound = [
      ...state.who.user_ids.map((u) => "user " + u),
      ...state.who.agent_ids.map((a) => "agent " + a),
    ];
    $("#who").textContent =
      "key " +
      state.who.name +
      " \u00b7 org " +
      state.who.org_id +
      (bound.length ? " \u00b7 " + bound.join(", ") : "");
    state.ranking = await guarded(() => api("GET", "/v1/search/ranking"));
    await loadScopes();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    location.reload();
  }

  // The scope list; the first scope is opened unless one is open already (after a forget,
  // the open scope stays open, emptied).
  async function loadScopes() {
    const current = ticket("scopes");
    const summaries = (await guarded(() => api("GET", "/v1/scopes"))) || [];
    if (!current()) return;
    const list = $("#scope-list");
    list.textContent = "";
    if (!summaries.length) list.append(h("li", { class: "muted", text: "no memories yet" }));
    for (const s of summaries) {
      const counts = KINDS.filter((k) => s.by_kind[k]).map((k) => s.by_kind[k] + " " + k);
      list.append(
        h(
          "li",
          { "data-scope": scopeLabel(s.scope), onclick: () => selectScope(s.scope) },
          scopeLabel(s.scope),
          h("span", { class: "counts", text: counts.join(", ") }),
        ),
      );
    }
    if (state.scope) {
      markScope();
      if (currentTab() === "memories") listMemories(false);
    } else if (summaries.length) {
      selectScope(summaries[0].scope);
    }
  }

  function markScope() {
    const label = scopeLabel(state.scope);
    $("#scope-title").textContent = label;
    for (const li of document.querySelectorAll("#scope-list li")) {
      li.classList.toggle("active", li.dataset.scope === label);
    }
  }

  function selectScope(scope) {
    state.scope = {
      org_id: scope.org_id || null,
      user_id: scope.user_id || null,
      agent_id: scope.agent_id || null,
      thread_id: scope.thread_id || null,
    };
    markScope();
    // Whatever is still loading for the previous scope must not draw under this one.
    for (const name of ["memories", "search", "graph", "edge", "learning", "quarantine"]) {
      ticket(name);
    }
    closeDetail();
    status("");
    $("#memory-table tbody").textContent = "";
    $("#memory-count").textContent = "";
    $("#hit-table thead").textContent = "";
    $("#hit-table tbody").textContent = "";
    $("#graph-frame").srcdoc = "";
    $("#edge-facts").textContent = "";
    $("#forget-report").hidden = true;
    showTab(currentTab());
  }

  // -- tabs -------------------------------------------------------------------------------

  function currentTab() {
    return $("#tabs button.active").dataset.tab;
  }

  function showTab(name) {
    for (const b of document.querySelectorAll("#tabs button")) {
      b.classList.toggle("active", b.dataset.tab === name);
    }
    for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== "tab-" + name;
    closeDetail();
    status("");
    if (!state.scope) return;
    if (name === "memories") listMemories(false);
    if (name === "graph" && !$("#graph-frame").srcdoc) loadGraph();
    if (name === "learning") loadLearning();
    if (name === "review") loadQuarantine();
  }

  // -- memories ---------------------------------------------------------------------------

  function flagsOf(record, withSource = true) {
    const p = record.provenance || {};
    const out = [];
    if (record.invalidated_at) out.push(h("span", { class: "badge off", text: "invalidated" }));
    if (p.trust && p.trust !== "trusted")
      out.push(h("span", { class: "badge warn", text: p.trust }));
    for (const f of p.flags || []) out.push(h("span", { class: "badge warn", text: f }));
    if (p.source && withSource) out.push(h("span", { class: "badge", text: "by " + p.source }));
    return out;
  }

  async function listMemories(more) {
    const form = $("#memory-filters");
    let filters = form.filters.value.trim();
    if (filters) {
      try {
        JSON.parse(filters);
      } catch (err) {
        status("metadata filter is not JSON: " + err.message, true);
        return;
      }
    }
    const offset = more ? state.nextOffset : 0;
    const current = ticket("memories");
    const page = await guarded(() =>
      get("/v1/memories", {
        kinds: form.kind.value,
        filters,
        event_after: form.event_after.value ? form.event_after.value + "T00:00:00Z" : "",
        event_before: form.event_before.value ? form.event_before.value + "T00:00:00Z" : "",
        include_invalidated: form.include_invalidated.checked ? "true" : "",
        limit: 100,
        offset,
      }),
    );
    if (!current()) return;
    const body = $("#memory-table tbody");
    if (!page) {
      if (!more) {
        body.textContent = "";
        $("#memory-count").textContent = "";
        $("#memory-more").hidden = true;
      }
      return;
    }
    if (!more) body.textContent = "";
    for (const r of page.items) {
      body.append(
        h(
          "tr",
          {
            class: "row" + (r.invalidated_at ? " invalidated" : ""),
            "data-id": r.id,
            onclick: () => openMemory(r.id),
          },
          h("td", { class: "mono", text: when(r.event_time || r.created_at) }),
          h("td", {}, h("span", { class: "badge " + r.kind, text: r.kind })),
          h("td", { class: "text", text: clip(r.text, 240) }),
          h("td", { class: "num", text: r.version }),
          h("td", {}, flagsOf(r)),
        ),
      );
    }
    state.nextOffset = page.next_offset;
    $("#memory-more").hidden = page.next_offset === null;
    $("#memory-count").textContent =
      body.children.length + " memories" + (page.next_offset !== null ? " (more below)" : "");
  }

  // -- one memory: versions, provenance, links, utility, and corrections -------------------

  function idLink(id) {
    return h("a", {
      class: "id mono",
      text: id.slice(0, 8),
      title: id,
      onclick: () => openMemory(id),
    });
  }

  function closeDetail() {
    $("#detail").hidden = true;
    state.memoryId = null;
  }

  async function openMemory(id) {
    state.memoryId = id;
    const [record, history, links, usefulness] = await Promise.all([
      guarded(() => get("/v1/memories/" + id)),
      guarded(() => get("/v1/memories/" + id + "/history")),
      get("/v1/memories/" + id + "/links").catch(() => []),
      get("/v1/memories/" + id + "/utility").catch(() => null),
    ]);
    if (!record || state.memoryId !== id) return;
    const p = record.provenance || {};
    const box = $("#detail-body");
    box.textContent = "";
    const facts = [
      ["id", h("span", { class: "mono", text: record.id })],
      ["scope", scopeLabel(record.scope)],
      ["event time", when(record.event_time)],
      [
        "valid",
        (when(record.valid_from) || "\u2014") + " \u2192 " + (when(record.valid_to) || "now"),
      ],
      ["created", when(record.created_at)],
      ["updated", when(record.updated_at)],
      ["invalidated", when(record.invalidated_at)],
      ["importance", num(record.importance, 2)],
      [
        "recalled",
        record.access_count +
          " times" +
          (record.last_accessed_at ? ", last " + when(record.last_accessed_at) : ""),
      ],
      [
        "utility",
        usefulness && usefulness.utility !== null
          ? num(usefulness.utility, 2) + " from " + usefulness.count + " reward(s)"
          : "not rated yet",
      ],
    ];
    const sources = [...(p.source_ids || []), ...(p.sources || [])];
    const rest = Object.fromEntries(
      Object.entries(p).filter(
        ([k]) => !["source", "trust", "flags", "source_ids", "sources"].includes(k),
      ),
    );
    box.append(
      h(
        "h2",
        {},
        h("span", { class: "badge " + record.kind, text: record.kind }),
        " version " + record.version,
      ),
      h("div", { class: "text", id: "detail-text", text: record.text }),
      h(
        "div",
        { class: "actions" },
        h("button", {
          type: "button",
          id: "edit-memory",
          text: "Edit",
          onclick: () => editMemory(record),
        }),
        h("button", {
          type: "button",
          id: "invalidate-memory",
          text: "Invalidate",
          disabled: !!record.invalidated_at,
          onclick: () => invalidateMemory(record),
        }),
        h("button", {
          type: "button",
          id: "forget-memory",
          class: "danger",
          text: "Forget\u2026",
          onclick: () => forgetMemory(record),
        }),
      ),
      h(
        "dl",
        {},
        facts.filter(([, v]) => v).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]),
      ),
      h("h3", { text: "Provenance" }),
      h(
        "dl",
        {},
        h("dt", { text: "written by" }),
        h("dd", { text: (p.source || "\u2014") + (p.trust ? " (" + p.trust + ")" : "") }),
        h("dt", { text: "flags" }),
        h("dd", {}, flagsOf(record, false).length ? flagsOf(record, false) : "none"),
        h("dt", { text: "from" }),
        h("dd", {}, sources.length ? sources.map(idLink) : "\u2014"),
        h("dt", { text: "details" }),
        h("dd", { class: "mono", text: JSON.stringify(rest) }),
      ),
      h("h3", { text: "Metadata" }),
      h("div", { class: "mono", text: JSON.stringify(record.metadata) }),
      h("h3", { text: "Links (" + (links || []).length + ")" }),
      h(
        "ul",
        {},
        (links || []).map((l) =>
          h(
            "li",
            {},
            (l.direction === "out" ? "\u2192 " : "\u2190 ") + l.type + " ",
            idLink(l.other_id),
            h("span", {
              class: "muted",
              text: " by " + l.made_by + (l.reason ? ": " + l.reason : ""),
            }),
          ),
        ),
      ),
      h("h3", { text: "Versions (" + (history || []).length + " changes)" }),
      h("div", { id: "history" }, (history || []).map(versionEntry)),
    );
    $("#detail").hidden = false;
  }

  function versionEntry(e) {
    const change = [];
    if (e.old_text !== null && e.old_text !== e.new_text)
      change.push(h("div", { class: "old", text: e.old_text }));
    if (e.new_text !== null && e.new_text !== e.old_text)
      change.push(h("div", { class: "new", text: e.new_text }));
    if (e.new_metadata && JSON.stringify(e.new_metadata) !== JSON.stringify(e.old_metadata)) {
      change.push(
        h("div", { class: "mono muted", text: "metadata " + JSON.stringify(e.new_metadata) }),
      );
    }
    return h(
      "div",
      { class: "version" },
      h("strong", { text: e.event + " v" + e.version }),
      h("span", { class: "muted", text: " " + when(e.at) + " by " + e.actor }),
      change,
    );
  }

  function confirmAction(text, expected) {
    const dialog = $("#confirm"),
      input = $("#confirm-input"),
      ok = $("#confirm-ok");
    $("#confirm-text").textContent = text;
    input.value = "";
    input.hidden = !expected;
    input.placeholder = expected ? "type " + expected + " to confirm" : "";
    ok.disabled = !!expected;
    input.oninput = () => {
      ok.disabled = input.value !== expected;
    };
    input.onkeydown = (event) => {
      if (event.key !== "Enter" || ok.disabled) return;
      // Not also a press of the button focus returns to when the dialog closes.
      event.preventDefault();
      ok.click();
    };
    dialog.showModal();
    return new Promise((resolve) => {
      const done = (answer) => {
        dialog.close();
        resolve(answer);
      };
      ok.onclick = () => done(true);
      $("#confirm-cancel").onclick = () => done(false);
      dialog.oncancel = () => resolve(false);
    });
  }

  // A textarea's value holds LF line breaks only (HTML normalises CR LF and CR to LF).
  const textareaForm = (text) => text.replace(/\r\n?/g, "\n");

  // An edited text with the original's line breaks when it used CR LF throughout, so an edit
  // of one word does not also rewrite every line break.
  function withLineBreaksOf(original, edited) {
    const crlfOnly = original.includes("\r\n") && !/\r(?!\n)|(^|[^\r])\n/.test(original);
    return crlfOnly ? edited.replace(/\n/g, "\r\n") : edited;
  }

  function editMemory(record) {
    const dialog = $("#editor");
    $("#editor-text").value = record.text;
    $("#editor-metadata").value = JSON.stringify(record.metadata);
    $("#editor-importance").value = record.importance;
    $("#editor-error").textContent = "";
    $("#editor-cancel").onclick = () => dialog.close();
    $("#editor-save").onclick = async () => {
      let metadata;
      try {
        metadata = JSON.parse($("#editor-metadata").value || "{}");
      } catch (err) {
        $("#editor-error").textContent = "metadata is not JSON: " + err.message;
        return;
      }
      if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
        $("#editor-error").textContent = "metadata must be a JSON object, e.g. {}";
        return;
      }
      // Only what changed is sent; an empty importance box leaves the importance as it is.
      const text = $("#editor-text").value;
      const raw = $("#editor-importance").value.trim();
      const change = {};
      // The textarea turned CR LF and lone CR into LF: compare with that, not the stored text.
      if (text !== textareaForm(record.text)) change.text = withLineBreaksOf(record.text, text);
      if (JSON.stringify(metadata) !== JSON.stringify(record.metadata)) change.metadata = metadata;
      if (raw !== "" && Number(raw) !== record.importance) change.importance = Number(raw);
      if (!Object.keys(change).length) {
        $("#editor-error").textContent = "nothing changed";
        return;
      }
      try {
        await api("PATCH", "/v1/memories/" + record.id, {
          body: { ...scopeFields(), ...change },
        });
      } catch (err) {
        $("#editor-error").textContent = err.message;
        return;
      }
      dialog.close();
      status("saved a new version");
      await openMemory(record.id);
      if (currentTab() === "memories") listMemories(false);
    };
    dialog.showModal();
  }

  async function invalidateMemory(record) {
    if (
      !(await confirmAction(
        "Mark this memory as no longer true? It is kept (search as of an earlier time still finds it) and its history gains an INVALIDATE entry.",
      ))
    )
      return;
    if (await guarded(() => post("/v1/memories/" + record.id + "/invalidate", {}))) {
      status("invalidated");
      await openMemory(record.id);
      if (currentTab() === "memories") listMemories(false);
    }
  }

  async function forgetMemory(record) {
    if (
      !(await confirmAction(
        "Forget this memory everywhere (store, indexes, graph, buffers; adapters trained on it are retired)? This cannot be undone.",
        "forget",
      ))
    )
      return;
    const report = await guarded(() =>
      post("/v1/forget", { ids: [record.id], reason: "forgotten in the inspector" }),
    );
    if (!report) return;
    closeDetail();
    status(
      "forgot " + report.forgotten_ids.length + " memory(ies) (" + report.derived + " derived)",
    );
    loadScopes();
  }

  // -- search, explained --------------------------------------------------------------------

  // The dense channel is fused score-aware (retrieval.dense_gap_ranks): its rank also counts
  // the cosine a hit trails the channel's best hit, except for a question about the present
  // state (a `newest` ranking among the channels). The best is the highest dense score among
  // the hits: exact whenever the channel's first hit is one of them.
  function scoreAware(hits) {
    const r = state.ranking;
    const perUnit = r && r.dense_gap_ranks;
    if (!perUnit || hits.some((x) => "newest" in x.channels)) return {};
    const dense = hits.map((x) => x.channels.dense).filter((s) => s);
    if (!dense.length) return {};
    return { dense: { perUnit, best: Math.max(...dense.map((s) => s.score)) } };
  }

  function contribution(channel, s, aware) {
    const r = state.ranking;
    if (!r || !r.weights[channel]) return 0;
    const a = aware[channel];
    const rank = a ? s.rank + a.perUnit * (a.best - s.score) : s.rank;
    return r.weights[channel] / (r.rrf_k + rank);
  }

  async function search(event) {
    event.preventDefault();
    const current = ticket("search");
    const form = $("#search-form");
    const query = form.query.value.trim();
    if (!query) {
      status("type a query", true);
      return;
    }
    const hits = await guarded(() =>
      post("/v1/memories/search", {
        query,
        k: Number(form.k.value) || 10,
        expand_links: Number(form.expand_links.value),
        include_quarantined: form.include_quarantined.checked,
        as_of: form.as_of.value ? form.as_of.value + "T23:59:59Z" : undefined,
      }),
    );
    if (!hits || !current()) return;
    const used = CHANNELS.filter((c) => hits.some((x) => c in x.channels));
    for (const x of hits) for (const c in x.channels) if (!used.includes(c)) used.push(c);
    const colour = (c) =>
      COLOURS[CHANNELS.indexOf(c) >= 0 ? CHANNELS.indexOf(c) : COLOURS.length - 1];
    $("#hit-table thead").textContent = "";
    $("#hit-table thead").append(
      h(
        "tr",
        {},
        h("th", { text: "#" }),
        h("th", { text: "score" }),
        h("th", { text: "memory" }),
        used.map((c) => h("th", { text: c })),
      ),
    );
    const body = $("#hit-table tbody");
    body.textContent = "";
    const aware = scoreAware(hits);
    const best = Math.max(
      1e-9,
      ...hits.map((x) =>
        Object.entries(x.channels).reduce((sum, [c, s]) => sum + contribution(c, s, aware), 0),
      ),
    );
    hits.forEach((x, i) => {
      const parts = Object.entries(x.channels).map(([c, s]) => [c, contribution(c, s, aware)]);
      body.append(
        h(
          "tr",
          { class: "row", "data-id": x.record.id, onclick: () => openMemory(x.record.id) },
          h("td", { class: "num", text: i + 1 }),
          h(
            "td",
            { class: "num" },
            num(x.score, 4),
            h(
              "div",
              { class: "stack" },
              parts
                .filter(([, v]) => v > 0)
                .map(([c, v]) =>
                  h("span", {
                    title: c + " +" + v.toFixed(4),
                    style: "width:" + ((100 * v) / best).toFixed(1) + "%;background:" + colour(c),
                  }),
                ),
            ),
          ),
          h(
            "td",
            { class: "text" },
            h("span", { class: "badge " + x.record.kind, text: x.record.kind }),
            " " + clip(x.record.text, 200),
            " ",
            flagsOf(x.record),
          ),
          used.map((c) => {
            const s = x.channels[c];
            if (!s) return h("td", { class: "muted", text: "\u2014" });
            const plus = contribution(c, s, aware);
            return h(
              "td",
              { class: "channel", title: c + ": rank " + s.rank + ", raw score " + s.score },
              h("span", { class: "rank", text: "#" + s.rank }),
              " " + num(s.score, 3),
              plus ? h("div", { class: "muted", text: "+" + plus.toFixed(4) }) : null,
            );
          }),
        ),
      );
    });
    const r = state.ranking;
    $("#ranking-note").textContent = r
      ? "Each channel ranks on its own; the fused score is the sum of weight / (" +
        r.rrf_k +
        " + rank) over the channels that found a memory (the +numbers; bars show them), " +
        (aware.dense
          ? "the dense rank plus " +
            aware.dense.perUnit +
            " per unit of cosine behind its best hit, "
          : "") +
        (r.utility_enabled
          ? "then mixed with learned utility (weight " + r.utility_weight + "). "
          : "") +
        "Weights: " +
        Object.entries(r.weights)
          .filter(([, w]) => w > 0)
          .map(([c, w]) => c + " " + w)
          .join(", ") +
        "." +
        (hits.some((x) => "supersedes" in x.channels)
          ? " A hit with a supersedes rank took the place of the memory at that rank: both" +
            " set one attribute (lives in, works at, ...) to different values and the" +
            " question asks how things are, not how they were, so the newer value comes first."
          : "")
      : "";
    status(hits.length + " hits");
  }

  // -- graph --------------------------------------------------------------------------------

  async function loadGraph() {
    const current = ticket("graph");
    const page = await guarded(() => get("/v1/graph/export", { format: "html" }));
    if (page === undefined || !current()) return;
    $("#graph-frame").srcdoc = page;
    $("#edge-facts").textContent = "";
    status("graph of " + scopeLabel(state.scope));
  }

  async function showEdgeFacts(edge) {
    const current = ticket("edge");
    const box = $("#edge-facts");
    const ids = [...edge.fact_ids, ...edge.episode_ids];
    const records = await Promise.all(ids.map((id) => get("/v1/memories/" + id).catch(() => null)));
    if (!current()) return;
    box.textContent = "";
    box.append(
      h("h3", { text: edge.source + " " + edge.predicate + " " + edge.target }),
      h("div", {
        class: "muted",
        text:
          (edge.current ? "holds" : "ended") +
          (edge.valid_from ? " from " + when(edge.valid_from) : "") +
          (edge.valid_to ? " to " + when(edge.valid_to) : ""),
      }),
    );
    const found = records.filter((r) => r);
    if (!found.length)
      box.append(h("p", { class: "muted", text: "no stored fact visible in this scope" }));
    for (const r of found) {
      box.append(
        h(
          "div",
          { class: "fact", "data-id": r.id, onclick: () => openMemory(r.id) },
          h("span", { class: "badge " + r.kind, text: r.kind }),
          " " + r.text,
          h("div", { class: "muted", text: when(r.event_time || r.created_at) }),
        ),
      );
    }
  }

  window.addEventListener("message", (event) => {
    const frame = $("#graph-frame");
    if (event.source !== frame.contentWindow || !event.data || event.data.type !== "agentmem:edge")
      return;
    showEdgeFacts(event.data);
  });

  // -- consolidation and learning -----------------------------------------------------------

  async function loadLearning() {
    const current = ticket("learning");
    const rows = (await guarded(() => get("/v1/consolidation/runs", { limit: 200 }))) || [];
    if (!current()) return;
    const ledger = $("#ledger-table tbody");
    ledger.textContent = "";
    if (!rows.length)
      ledger.append(
        h(
          "tr",
          {},
          h("td", { colspan: 8, class: "muted", text: "no consolidation run for this scope yet" }),
        ),
      );
    for (const r of rows) {
      ledger.append(
        h(
          "tr",
          {},
          h("td", { class: "mono", text: when(r.started_at) }),
          h("td", { class: "mono", text: r.run_id.slice(0, 8), title: r.run_id }),
          h("td", { text: r.stage }),
          h(
            "td",
            {},
            h("span", { class: "badge" + (r.status === "failed" ? " warn" : ""), text: r.status }),
          ),
          h("td", { class: "num", text: r.count_in }),
          h("td", { class: "num", text: r.count_out }),
          h("td", { class: "num", text: num(r.duration_s, 2) }),
          h("td", { class: "text", text: r.error || r.note }),
        ),
      );
    }
    let list, failed;
    try {
      list = await get("/v1/adapters");
    } catch (err) {
      failed = err;
    }
    if (!current()) return;
    const adapters = $("#adapters");
    adapters.textContent = "";
    if (failed) adapters.append(h("p", { class: "muted", text: failed.message }));
    else {
      adapters.append(
        list.length
          ? h(
              "table",
              { class: "grid" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  [
                    "kind",
                    "version",
                    "trained",
                    "promoted",
                    "held-out score",
                    "base score",
                    "figures",
                  ].map((t) => h("th", { text: t })),
                ),
              ),
              h(
                "tbody",
                {},
                list.map((a) =>
                  h(
                    "tr",
                    {},
                    h("td", { text: a.kind }),
                    h("td", { class: "num", text: a.version }),
                    h("td", { class: "mono", text: when(a.created) }),
                    h(
                      "td",
                      {},
                      a.tainted
                        ? h("span", { class: "badge warn", text: "tainted (forgotten data)" })
                        : a.promoted
                          ? "yes"
                          : "no",
                    ),
                    h("td", { class: "num", text: num(a.score, 3) }),
                    h("td", { class: "num", text: num(a.base_score, 3) }),
                    h("td", { class: "mono text", text: JSON.stringify(a.metrics) }),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted", text: "no adapter trained for this scope yet" }),
      );
    }
    const reports = (await guarded(() => get("/v1/forget/reports", { limit: 50 }))) || [];
    if (!current()) return;
    const probes = $("#probe-table tbody");
    probes.textContent = "";
    for (const r of reports) {
      const forget = h("td", { class: "mono", text: r.forget_id.slice(0, 8), title: r.reason });
      const tested = (r.probe && r.probe.adapters) || [];
      for (const a of tested)
        probes.append(
          h(
            "tr",
            {},
            forget.cloneNode(true),
            h("td", { class: "mono", text: when(r.finished_at) }),
            h("td", { text: a.kind }),
            h("td", { class: "num", text: a.version }),
            h("td", { class: "num", text: a.questions }),
            h("td", { class: "num", text: a.leaks }),
            h(
              "td",
              {},
              h("span", {
                class: "badge" + (a.passed ? "" : " warn"),
                text: a.passed ? "yes" : "no",
              }),
            ),
          ),
        );
      if (!tested.length && r.adapters_tainted.length)
        probes.append(
          h(
            "tr",
            {},
            forget,
            h("td", { colspan: 6, class: "muted", text: "tainted adapters await a clean retrain" }),
          ),
        );
    }
    if (!probes.children.length)
      probes.append(
        h(
          "tr",
          {},
          h("td", { colspan: 7, class: "muted", text: "no forget has retrained an adapter here" }),
        ),
      );
    const procedures =
      (await guarded(() => get("/v1/procedures", { include_retired: "true" }))) || [];
    if (!current()) return;
    const body = $("#procedure-table tbody");
    body.textContent = "";
    if (!procedures.length)
      body.append(
        h("tr", {}, h("td", { colspan: 7, class: "muted", text: "no procedure distilled yet" })),
      );
    for (const p of procedures) {
      body.append(
        h(
          "tr",
          { class: "row", onclick: () => openMemory(p.id) },
          h("td", { class: "text", text: p.text }),
          h("td", { text: p.task_family }),
          h("td", {}, h("span", { class: "badge", text: p.status })),
          h("td", { class: "num", text: p.support }),
          h("td", { class: "num", text: p.successes }),
          h("td", { class: "num", text: p.failures }),
          h("td", { class: "mono", text: when(p.last_used) }),
        ),
      );
    }
  }

  async function consolidate() {
    const run = await guarded(() => post("/v1/consolidation/runs", {}));
    if (!run) return;
    status("queued consolidation run " + run.run_id.slice(0, 8) + "; refreshing in a moment");
    setTimeout(loadLearning, 1500);
  }

  // -- review: quarantine and forgetting a whole scope --------------------------------------

  async function loadQuarantine() {
    const current = ticket("quarantine");
    const held = (await guarded(() => get("/v1/quarantine"))) || [];
    if (!current()) return;
    const body = $("#quarantine-table tbody");
    body.textContent = "";
    if (!held.length)
      body.append(h("tr", {}, h("td", { colspan: 5, class: "muted", text: "nothing held" })));
    for (const r of held) {
      const decide = (verb) => async () => {
        const done = await guarded(() => post("/v1/quarantine/" + verb, { ids: [r.id] }));
        if (done !== undefined) {
          status(verb === "approve" ? "released into memory" : "dropped");
          loadQuarantine();
        }
      };
      body.append(
        h(
          "tr",
          { "data-id": r.id },
          h("td", { class: "mono", text: when(r.created_at) }),
          h("td", { text: (r.provenance || {}).source || "" }),
          h("td", { class: "text", text: r.text }),
          h("td", {}, flagsOf(r)),
          h(
            "td",
            {},
            h("button", {
              type: "button",
              class: "small release",
              text: "Release",
              onclick: decide("approve"),
            }),
            " ",
            h("button", {
              type: "button",
              class: "small danger drop",
              text: "Drop",
              onclick: decide("reject"),
            }),
          ),
        ),
      );
    }
  }

  async function forgetScope() {
    // Typed to confirm, so plain keyboard text (the fields apart by spaces, not the middle
    // dot); a blank scope is every scope the key reaches (the server fills in its org), and
    // that too must be typed, never a bare OK.
    const label =
      scopeLabel(state.scope).replaceAll(" \u00b7 ", " ") || "every scope of this key";
    if (
      !(await confirmAction(
        "Forget every memory of " + label + ", everywhere? This cannot be undone.",
        label,
      ))
    )
      return;
    const report = await guarded(() =>
      post("/v1/forget", { whole_scope: true, reason: "scope forgotten in the inspector" }),
    );
    if (!report) return;
    const box = $("#forget-report");
    box.hidden = false;
    box.textContent =
      "forget " +
      report.forget_id +
      ": " +
      report.forgotten_ids.length +
      " memories (" +
      report.derived +
      " derived)\nremoved " +
      JSON.stringify(report.removed);
    status("forgot " + label);
    loadScopes();
  }

  // -- wiring -------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("#key-input").value.trim());
    });
    $("#sign-out").addEventListener("click", signOut);
    $("#scope-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const f = e.target;
      selectScope({
        org_id: null,
        user_id: f.user_id.value.trim(),
        agent_id: f.agent_id.value.trim(),
        thread_id: f.thread_id.value.trim(),
      });
    });
    for (const b of document.querySelectorAll("#tabs button"))
      b.addEventListener("click", () => showTab(b.dataset.tab));
    $("#memory-filters").addEventListener("submit", (e) => {
      e.preventDefault();
      listMemories(false);
    });
    $("#memory-more").addEventListener("click", () => listMemories(true));
    $("#search-form").addEventListener("submit", search);
    $("#graph-load").addEventListener("click", loadGraph);
    $("#consolidate").addEventListener("click", consolidate);
    $("#forget-scope").addEventListener("click", forgetScope);
    $("#detail-close").addEventListener("click", closeDetail);
    if (state.key) signIn(state.key);
  });
})();
