// The monitoring panel: pages over the service's REST API (/api/v1), with the same
// API token as every other client. The token is entered once on the sign-in form (or
// handed over as #token=… in the address, which never reaches the server) and kept in
// sessionStorage: it lasts as long as the browser tab.
//
// Every page sets <body data-state="ready"> once drawn (or "error" with the reason in
// #error), so that a headless browser knows when to look.
"use strict";

const Panel = (() => {
  const TOKEN = "mlbench.token";

  function token() {
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("token")) {
      sessionStorage.setItem(TOKEN, hash.get("token"));
      // Out of the address bar and the history.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN);
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({ Authorization: `Bearer ${token()}` }, options.headers || {});
    if (options.body && typeof options.body !== "string") {
      options = Object.assign({}, options, { body: JSON.stringify(options.body) });
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(`/api/v1${path}`, Object.assign({}, options, { headers }));
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
    if (!response.ok) {
      const message = body && body.error ? (body.error.message || body.error) : (body && body.message) || `HTTP ${response.status}`;
      throw new APIError(response.status, `${path}: ${typeof message === "string" ? message : JSON.stringify(message)}`);
    }
    return body;
  }

  // Server-sent events through fetch (EventSource cannot send the Authorization header);
  // calls on(event, data) for each event until the stream ends or `signal` aborts it.
  async function events(path, on, signal) {
    const response = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal });
    if (!response.ok || !response.body) throw new APIError(response.status, `${path}: HTTP ${response.status}`);
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) on(name, JSON.parse(data));
      }
    }
  }

  // ---- small DOM helpers

  function h(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  const main = () => document.getElementById("main");

  // A duration in the unit that reads best: µs below a millisecond, ms up to a minute.
  function ms(ns) {
    if (ns === null || ns === undefined) return "–";
    return Math.abs(ns) < 1e6 ? `${Plots.format(ns / 1e3)} µs` : `${Plots.format(ns / 1e6)} ms`;
  }
  function when(text) { return text ? new Date(text).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }) : "–"; }
  function badge(text, kind) { return h("span", { class: `badge badge-${kind || text}` }, text); }
  function table(columns, rows, attributes = {}) {
    return h("table", attributes, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))), h("tbody", {}, rows));
  }
  function section(title, ...children) { return h("section", { class: "card" }, h("h2", {}, title), ...children); }

  function ready() { document.body.dataset.state = "ready"; }
  function fail(error) {
    if (error instanceof APIError && error.status === 401) {
      sessionStorage.removeItem(TOKEN);
      return signIn("The token was refused (unknown or revoked). Enter a valid API token.");
    }
    const box = document.getElementById("error");
    box.textContent = error.message || String(error);
    box.hidden = false;
    document.body.dataset.state = "error";
  }

  // ---- sign-in

  function signIn(message) {
    const input = h("input", { id: "token", type: "password", placeholder: "mlb_…", autocomplete: "off", size: 48 });
    const form = h("form", { id: "sign-in", class: "card", onsubmit: (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN, input.value.trim());
      location.reload();
    } },
      h("h2", {}, "Sign in"),
      h("p", {}, message || "Enter your API token (`mlbench users token NAME` prints one). It is kept in this browser tab only."),
      h("label", { for: "token" }, "API token "), input, " ", h("button", { type: "submit" }, "Sign in"));
    main().replaceChildren(form);
    document.getElementById("sign-out").hidden = true;
    document.body.dataset.state = "sign-in";
  }

  async function start(render) {
    document.getElementById("sign-out").addEventListener("click", () => { sessionStorage.removeItem(TOKEN); location.href = "index.html"; });
    if (!token()) return signIn();
    try {
      const me = await api("/me");
      document.getElementById("who").textContent = `${me.name} (${me.role})`;
      await render(me);
      ready();
    } catch (error) { fail(error); }
  }

  // ---- overview: queue, boards, live progress, results

  // The live feed outlives the refreshes of the tables around it.
  const feed = h("ol", { id: "live-feed", class: "feed" });
  const followed = new Set();
  // The last log line shown of each experiment: a stream opened again replays its log.
  const shownUpTo = new Map();
  let refreshing = null;

  async function overview() {
    const [experiments, boards, results] = await Promise.all([api("/experiments"), api("/boards"), api("/results?limit=50")]);
    const active = experiments.filter((e) => e.state === "queued" || e.state === "running" || e.state === "suspended");
    const counts = {};
    for (const e of experiments) counts[e.state] = (counts[e.state] || 0) + 1;

    const summary = h("div", { class: "tiles", id: "tiles" },
      ["queued", "running", "suspended", "succeeded", "failed"].map((state) =>
        h("div", { class: `tile tile-${state}`, "data-state": state }, h("div", { class: "tile-number" }, counts[state] || 0), h("div", {}, state))));

    const queueRows = active.map((e) => h("tr", { class: "queue-row", "data-id": e.id, "data-state": e.state },
      h("td", {}, h("code", {}, e.id.slice(0, 8))), h("td", {}, e.name), h("td", {}, e.user), h("td", {}, e.board),
      h("td", {}, badge(e.state)), h("td", {}, when(e.submitted_at)), h("td", { class: "progress-cell" }, e.state === "running" ? "starting…" : "")));
    const queue = section("Queue",
      queueRows.length ? table(["id", "name", "user", "board", "state", "submitted", "progress"], queueRows, { id: "queue" })
                       : h("p", { class: "muted", id: "queue-empty" }, "Nothing queued or running."));

    const boardRows = boards.map((b) => {
      const running = experiments.find((e) => e.board === b.name && e.state === "running");
      const waiting = experiments.filter((e) => e.board === b.name && e.state === "queued").length;
      return h("tr", { class: "board-row", "data-board": b.name, "data-health": b.health, "data-enabled": String(b.enabled) },
        h("td", {}, h("strong", {}, b.name)), h("td", {}, b.host), h("td", {}, badge(b.health, `health-${b.health}`)),
        h("td", {}, b.enabled ? badge("enabled", "enabled") : badge("disabled", "disabled")),
        h("td", {}, running ? running.name : "idle"), h("td", { class: "number" }, waiting), h("td", { class: "muted" }, b.note || ""));
    });
    const boardSection = section("Boards",
      boardRows.length ? table(["board", "host", "health", "state", "running", "queued", "note"], boardRows, { id: "boards" })
                       : h("p", { class: "muted" }, "No board is registered (`mlbench boards register`)."));

    const live = section("Live progress", h("p", { class: "muted" }, "Step-log lines of running experiments, newest first (server-sent events)."), feed);

    const picked = new Set();
    const compare = h("button", { id: "compare", disabled: true, onclick: () => { location.href = `compare.html?ids=${[...picked].join(",")}`; } }, "Compare selected");
    const resultRows = results.map((r) => h("tr", { class: "result-row", "data-id": r.id },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `select ${r.name}`, onchange: (event) => {
        event.target.checked ? picked.add(r.id) : picked.delete(r.id);
        compare.disabled = picked.size < 2;
      } })),
      h("td", {}, h("a", { href: `result.html?id=${encodeURIComponent(r.id)}` }, r.name)), h("td", {}, badge(r.status)),
      h("td", {}, r.board || "–"), h("td", {}, [r.toolchain, r.toolchain_version].filter(Boolean).join(" ") || "–"),
      h("td", { class: "number" }, ms(r.median_ns)),
      h("td", { class: "number" }, r.preservation_ratio === null || r.preservation_ratio === undefined ? "–" : `${(r.preservation_ratio * 100).toFixed(1)} %`),
      h("td", {}, when(r.finished_at))));
    const resultSection = section("Results",
      resultRows.length ? [table(["", "name", "status", "board", "toolchain", "median", "preserved", "finished"], resultRows, { id: "results" }), h("p", {}, compare)]
                        : h("p", { class: "muted" }, "No result yet."));

    main().replaceChildren(summary, queue, boardSection, live, resultSection);
    for (const e of active.filter((e) => e.state === "running" && !followed.has(e.id))) follow(e);
    // A monitoring page: the tables are fetched again every 10 s.
    clearTimeout(refreshing);
    refreshing = setTimeout(() => overview().catch(fail), 10000);
  }

  // Follows one experiment's events: its row's progress cell shows the latest step, the
  // feed every line; the tables are fetched again once it ends.
  function follow(experiment) {
    followed.add(experiment.id);
    const cell = () => document.querySelector(`tr[data-id="${experiment.id}"] .progress-cell`);
    events(`/experiments/${experiment.id}/events`, (name, data) => {
      if (name === "log") {
        if (data.sequence <= (shownUpTo.get(experiment.id) || 0)) return;
        shownUpTo.set(experiment.id, data.sequence);
        if (cell()) cell().textContent = data.line;
        feed.prepend(h("li", { class: "feed-line" }, h("time", {}, when(data.at)), " ", h("strong", {}, experiment.name), " ", data.line));
        while (feed.children.length > 200) feed.lastChild.remove();
      } else if (name === "end") {
        feed.prepend(h("li", { class: "feed-line feed-end" }, h("time", {}, when(data.finished_at)), " ", h("strong", {}, experiment.name), " ", badge(data.state)));
        overview().catch(fail);
      }
    }).catch(() => { /* the stream ends after a while (or the page is left); the next refresh follows again */ })
      .finally(() => followed.delete(experiment.id));
  }

  // ---- one result

  function facts(rows) {
    return h("dl", { class: "facts" }, rows.filter((r) => r[1] !== null && r[1] !== undefined && r[1] !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function probeChannels(result) {
    // Power channels first (W), then any other channel with samples: a profile of what was measured.
    const out = [];
    for (const probe of result.probes || []) {
      probe.channels.forEach((channel, index) => {
        if (probe.samples.some((s) => s.channel === index)) out.push({ probe, index, power: channel.unit === "W" });
      });
    }
    return out.sort((a, b) => (b.power - a.power));
  }

  async function resultPage() {
    const id = new URLSearchParams(location.search).get("id");
    if (!id) throw new Error("no result id in the address (result.html?id=…)");
    const r = await api(`/results/${encodeURIComponent(id)}`);
    document.title = `${r.name} · mlbench`;
    const m = r.measurement, s = m ? m.summary : null, w = r.warm_up;
    const head = section(r.name,
      h("p", {}, badge(r.status), " ", h("code", { id: "result-id" }, r.id)),
      r.failure ? h("p", { class: "failure" }, `${r.failure.stage}: ${r.failure.reason}`) : null,
      facts([
        ["board", r.board ? `${r.board.name} (${r.board.plugin} ${r.board.plugin_version})` : null],
        ["toolchain", r.toolchain ? `${r.toolchain.name} ${r.toolchain.version} · ${r.toolchain.target}` : null],
        ["reference", r.reference ? `${r.reference.name} ${r.reference.version}` : null],
        ["user", r.user], ["started", when(r.started_at)], ["finished", when(r.finished_at)],
        ["iterations", s ? `${s.count} measured after ${w ? w.durations_ns.length : 0} warm-up` : null],
        ["median", s ? `${ms(s.median)} (95 % CI ${ms(s.median_interval.lower)} – ${ms(s.median_interval.upper)})` : null],
        ["mean ± sd", s ? `${ms(s.mean)} ± ${ms(s.std)}` : null],
        ["p90 / p99", s ? `${ms(s.p90)} / ${ms(s.p99)}` : null],
        ["throughput", s && s.mean > 0 ? `${Plots.format(1e9 / s.mean)} inferences/s` : null],
        ["stopped because", m ? m.stopped_because : null],
        ["semantic preservation", r.semantic_preservation ? `${(r.semantic_preservation.ratio * 100).toFixed(1)} % of ${r.semantic_preservation.samples} samples (${r.semantic_preservation.metric})` : null],
        ["energy", (r.energy || []).filter((e) => e.median_j !== null && e.median_j !== undefined)
          .map((e) => `${e.probe}/${e.channel}: ${Plots.format(e.median_j * 1e3)} mJ per inference`).join("; ") || null],
      ]));
    const parts = [head];
    if (m) {
      parts.push(section("Latency histogram", Plots.histogram(m.durations_ns)));
      const steady = w && w.analysis ? w.analysis.steady_state_index : null;
      parts.push(section("Latency per iteration",
        h("p", { class: "muted" }, w ? `Shaded: the ${w.durations_ns.length} warm-up iterations` + (steady !== null && steady !== undefined ? `; dashed: the steady state the analysis found (iteration ${steady})` : "") + "." : "No warm-up was recorded."),
        Plots.series(w ? w.durations_ns : [], m.durations_ns, steady)));
      const channels = probeChannels(r);
      if (channels.length) {
        const shown = channels.slice(0, 3);
        parts.push(section(channels[0].power ? "Power profile" : "Probe profile",
          h("p", { class: "muted" }, `Shaded: the measured iterations' inference windows. ${channels[0].power ? "" : "This result has no power channel; its other probe series are shown."}`),
          shown.map(({ probe, index }) => h("figure", {}, h("figcaption", {}, `${probe.name} · ${probe.channels[index].name} (${probe.channels[index].unit})`),
            Plots.power(probe, index, m.starts_ns, m.durations_ns)))));
      } else {
        parts.push(section("Power profile", h("p", { class: "muted", id: "no-probes" }, "This result has no probe samples (the board has no probe in the inventory).")));
      }
    }
    parts.push(h("p", {}, h("a", { href: `compare.html?ids=${encodeURIComponent(r.id)}` }, "Compare with other results…")));
    main().replaceChildren(...parts);
  }

  // ---- several results

  async function comparePage() {
    const ids = (new URLSearchParams(location.search).get("ids") || "").split(",").filter(Boolean);
    const all = await api("/results?limit=100");
    const picker = h("form", { class: "card", id: "pick", onsubmit: (event) => {
      event.preventDefault();
      const chosen = [...event.target.querySelectorAll("input:checked")].map((i) => i.value);
      location.search = `?ids=${chosen.join(",")}`;
    } }, h("h2", {}, "Results to compare"),
      h("div", { class: "pick-list" }, all.map((r) => h("label", {}, h("input", { type: "checkbox", value: r.id, checked: ids.includes(r.id) }), ` ${r.name} `, h("code", {}, r.id.slice(0, 8))))),
      h("button", { type: "submit" }, "Compare"));
    if (ids.length < 2) {
      main().replaceChildren(picker);
      return;
    }
    const results = await Promise.all(ids.map((id) => api(`/results/${encodeURIComponent(id)}`)));
    const [boxes, ecdf] = Plots.comparison(results);
    const base = results[0].measurement ? results[0].measurement.summary.median : null;
    const rows = results.map((r, i) => {
      const s = r.measurement ? r.measurement.summary : null;
      return h("tr", { class: "compare-row", "data-id": r.id },
        h("td", {}, h("span", { class: "swatch", style: `background:${Plots.COLOURS[i % Plots.COLOURS.length]}` }), " ",
          h("a", { href: `result.html?id=${encodeURIComponent(r.id)}` }, r.name)),
        h("td", {}, r.board ? r.board.name : "–"), h("td", {}, r.toolchain ? `${r.toolchain.name} ${r.toolchain.version}` : "–"),
        h("td", { class: "number" }, s ? ms(s.median) : "–"),
        h("td", { class: "number" }, s ? `${ms(s.median_interval.lower)} – ${ms(s.median_interval.upper)}` : "–"),
        h("td", { class: "number" }, s && base ? (i === 0 ? "baseline" : `${(s.median / base).toFixed(3)}×`) : "–"),
        h("td", { class: "number" }, r.semantic_preservation ? `${(r.semantic_preservation.ratio * 100).toFixed(1)} %` : "–"));
    });
    main().replaceChildren(
      section("Comparison", h("p", { class: "muted" }, "Each result against the first. Boxes: quartiles; whiskers: 5th to 95th percentile; line: median."),
        table(["result", "board", "toolchain", "median", "95 % CI of the median", "vs baseline", "preserved"], rows, { id: "comparison" })),
      section("Latency by result", boxes), section("Distribution of latency", ecdf), picker);
  }

  return { start, overview, resultPage, comparePage, api };
})();

// One shell (panel.html) serves every page; the address names the page. No inline
// script: the server's Content-Security-Policy allows the panel's own files only.
document.addEventListener("DOMContentLoaded", () => {
  const pages = { "result.html": [Panel.resultPage, "Result"], "compare.html": [Panel.comparePage, "Compare results"] };
  const [render, title] = pages[location.pathname.split("/").pop()] || [Panel.overview, "Lab overview"];
  document.title = `${title} · mlbench`;
  document.body.dataset.page = render === Panel.overview ? "index" : location.pathname.split("/").pop().replace(".html", "");
  Panel.start(render);
});
