// llmlab dashboard. Talks to the JSON API with a bearer token kept in sessionStorage.
// Everything taken from data is rendered with textContent (never innerHTML): the CSP forbids
// inline script, and escaping by construction keeps model names, job ids and tags inert.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KEYS = { access: "llmlab.access", refresh: "llmlab.refresh", email: "llmlab.email",
                 project: "llmlab.project" };
  const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const COLORS = ["#3b5bdb", "#2f9e44", "#f08c00", "#ae3ec9", "#1098ad", "#e03131", "#5c940d",
                  "#d6336c", "#495057", "#0ca678"];
  const state = { projects: [], project: null, gen: 0, filters: {}, cursor: null, tagKeys: [] };

  // -- small DOM helpers ---------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function empty(node, message) {
    clear(node).appendChild(el("div", "empty", message));
  }

  function money(value) {
    // Cents for dollars; sub-dime amounts (one call's cost) keep four decimals.
    const n = Number(value || 0);
    const digits = n !== 0 && Math.abs(n) < 0.1 ? 4 : 2;
    return "$" + n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function count(value) {
    return Number(value || 0).toLocaleString("en-US");
  }

  function localDate(date) {
    // YYYY-MM-DD of ``date`` in the browser's zone (naive: the API reads it in ``tz``).
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  // -- API -------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.error ? body.error.code : null;
    }
  }

  let refreshing = null;

  async function refreshTokens() {
    // One refresh at a time: the refresh token rotates, a second use would end the session.
    if (!refreshing) {
      refreshing = (async () => {
        const token = sessionStorage.getItem(KEYS.refresh);
        if (!token) return false;
        const response = await fetch("/api/auth/refresh", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: token }), credentials: "omit",
        });
        if (!response.ok) return false;
        storeSession((await response.json()).data);
        return true;
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  async function request(path, params, raw) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const response = await fetch(url, {
        headers: { Authorization: `Bearer ${sessionStorage.getItem(KEYS.access) || ""}` },
        credentials: "omit",
      });
      if (response.status === 401 && attempt === 0 && await refreshTokens()) continue;
      if (response.status === 401) {
        signOut("Your session has ended; sign in again.");
        throw new ApiError(401, null);
      }
      if (raw && response.ok) return response;
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) throw new ApiError(response.status, body);
      return body.data;
    }
    throw new ApiError(401, null);
  }

  function storeSession(session) {
    sessionStorage.setItem(KEYS.access, session.access_token);
    sessionStorage.setItem(KEYS.refresh, session.refresh_token);
    if (session.user) sessionStorage.setItem(KEYS.email, session.user.email);
  }

  // -- login -----------------------------------------------------------------------------------

  function showLogin(message) {
    $("app-view").hidden = true;
    $("controls").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
    $("email").focus();
  }

  function signOut(message) {
    for (const key of [KEYS.access, KEYS.refresh, KEYS.email]) sessionStorage.removeItem(key);
    state.gen += 1;
    showLogin(message);
  }

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const response = await fetch("/api/auth/login", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit",
        body: JSON.stringify({ email: $("email").value, password: $("password").value }),
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, body);
      storeSession(body.data);
      $("password").value = "";
      await start();
    } catch (err) {
      $("login-error").textContent = err.status === 401 ? "Wrong email or password." : err.message;
    } finally {
      $("login-submit").disabled = false;
    }
  }

  async function logout() {
    const token = sessionStorage.getItem(KEYS.refresh);
    if (token) {
      fetch("/api/auth/logout", {
        method: "POST", credentials: "omit",
        headers: { "Content-Type": "application/json",
                   Authorization: `Bearer ${sessionStorage.getItem(KEYS.access) || ""}` },
        body: JSON.stringify({ refresh_token: token }),
      }).catch(() => {});
    }
    signOut("Signed out.");
  }

  // -- start and project picker ------------------------------------------------------------

  async function start() {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("controls").hidden = false;
    $("who").textContent = sessionStorage.getItem(KEYS.email) || "";
    $("tz").textContent = TZ;
    state.projects = await request("/api/projects");
    const select = clear($("project"));
    for (const project of state.projects) {
      const option = el("option", null, project.name);
      option.value = String(project.id);
      select.appendChild(option);
    }
    if (!state.projects.length) {
      notice("No projects yet: create one with POST /api/projects or `llmlab` CLI, then reload.");
      return;
    }
    const saved = sessionStorage.getItem(KEYS.project);
    const chosen = state.projects.find((p) => String(p.id) === saved) || state.projects[0];
    select.value = String(chosen.id);
    await selectProject(chosen.id);
  }

  function notice(message) {
    $("notice").hidden = !message;
    $("notice").textContent = message || "";
  }

  async function selectProject(id) {
    state.project = Number(id);
    sessionStorage.setItem(KEYS.project, String(id));
    state.filters = {};
    for (const input of $("filters").elements) if (input.name) input.value = "";
    await refreshAll();
  }

  function rangeParams() {
    const days = Number($("range").value);
    const start = new Date();
    start.setDate(start.getDate() - (days - 1));
    return { project: state.project, start: localDate(start), tz: TZ };
  }

  async function refreshAll() {
    const gen = (state.gen += 1);
    const live = () => gen === state.gen;
    notice("");
    document.body.dataset.loading = "true";
    // The rollup-backed reads first (cheap at any volume), then the rest.
    const first = [loadCards(live), loadTimeseries(live), loadBreakdowns(live), loadBudgets(live),
                   loadRecommendations(live)];
    const events = loadEvents(live, true);
    await Promise.allSettled([...first, events]);
    await Promise.allSettled([loadTop("job", live), loadTop("user", live), loadTags(live)]);
    if (live()) document.body.dataset.loading = "false";
  }

  function failed(node, err) {
    if (err.status === 401) return;
    empty(node, `Could not load: ${err.message}`);
  }

  // -- cards --------------------------------------------------------------------------------

  async function loadCards(live) {
    const now = new Date();
    const monthStart = new Date(now.getFullYear(), now.getMonth(), 1);
    const monthEnd = new Date(now.getFullYear(), now.getMonth() + 1, 1);
    const base = { project: state.project, tz: TZ };
    try {
      const [today, month, range] = await Promise.all([
        request("/api/costs/summary", { ...base, start: localDate(now) }),
        request("/api/costs/summary", { ...base, start: localDate(monthStart) }),
        request("/api/costs/summary", rangeParams()),
      ]);
      if (!live()) return;
      $("card-today").textContent = money(today.totals.cost);
      $("card-today-sub").textContent = `${count(today.totals.calls)} calls`;
      $("card-month").textContent = money(month.totals.cost);
      $("card-month-sub").textContent = `${count(month.totals.calls)} calls, ` +
        `${(month.totals.error_rate * 100).toFixed(1)}% errors`;
      const elapsed = (now - monthStart) / (monthEnd - monthStart);
      const forecast = elapsed > 0 ? Number(month.totals.cost) / elapsed : 0;
      $("card-forecast").textContent = money(forecast);
      $("card-range").textContent = money(range.totals.cost);
      $("card-range-sub").textContent = `${count(range.totals.calls)} calls, ` +
        `${count(range.totals.tokens.total_tokens)} tokens`;
    } catch (err) {
      if (live() && err.status !== 401) notice(`Could not load the totals: ${err.message}`);
    }
  }

  // -- charts -------------------------------------------------------------------------------

  const LAYOUT = {
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1d2430" },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 60, r: 16, t: 8, b: 40 }, showlegend: false,
    xaxis: { gridcolor: "#eef0f4", automargin: true },
    yaxis: { gridcolor: "#eef0f4", tickprefix: "$", rangemode: "tozero", automargin: true },
    hoverlabel: { font: { family: "system-ui, sans-serif" } },
  };
  const CONFIG = { displayModeBar: false, responsive: true };

  function plot(node, traces, layout) {
    if (!window.Plotly) {
      empty(node, "The chart library did not load.");
      return;
    }
    if (!node.classList.contains("js-plotly-plot")) clear(node);
    window.Plotly.react(node, traces, { ...LAYOUT, ...layout }, CONFIG);
  }

  function purge(node, message) {
    if (window.Plotly && node.classList.contains("js-plotly-plot")) window.Plotly.purge(node);
    empty(node, message);
  }

  async function loadTimeseries(live) {
    const node = $("chart-timeseries");
    const interval = $("interval").value;
    try {
      const series = await request("/api/costs/timeseries", { ...rangeParams(), interval });
      if (!live()) return;
      if (!series.points.some((p) => Number(p.cost) > 0 || p.calls > 0)) {
        purge(node, "No spend in this range.");
        return;
      }
      // Local wall time without the offset: plotly's date axes have no zones.
      const x = series.points.map((p) => String(p.start).slice(0, interval === "day" ? 10 : 16));
      plot(node, [{
        type: "scatter", mode: "lines+markers", x, y: series.points.map((p) => Number(p.cost)),
        line: { color: COLORS[0], width: 2, shape: "linear" }, marker: { size: interval === "day" ? 5 : 3 },
        fill: "tozeroy", fillcolor: "rgba(59,91,219,0.08)",
        customdata: series.points.map((p) => p.calls),
        hovertemplate: "%{x}<br>$%{y:.4f}<br>%{customdata} calls<extra></extra>",
      }], { xaxis: { ...LAYOUT.xaxis, type: "date" } });
    } catch (err) {
      if (live()) failed(node, err);
    }
  }

  async function loadBreakdowns(live) {
    await Promise.all(["model", "provider"].map(async (group) => {
      const node = $(`chart-${group}`);
      try {
        const summary = await request("/api/costs/summary", { ...rangeParams(), group_by: group });
        if (!live()) return;
        fillDatalist($(`dl-${group}`), summary.groups.map((g) => g.key));
        const rows = summary.groups.filter((g) => g.key !== null).slice(0, 10).reverse();
        if (!rows.length) {
          purge(node, "No spend in this range.");
          return;
        }
        plot(node, [{
          type: "bar", orientation: "h", x: rows.map((g) => Number(g.cost)),
          y: rows.map((g) => g.key), marker: { color: group === "model" ? COLORS[0] : COLORS[1] },
          customdata: rows.map((g) => g.calls),
          hovertemplate: "%{y}<br>$%{x:.4f}<br>%{customdata} calls<extra></extra>",
        }], {
          margin: { l: 10, r: 16, t: 8, b: 36 },
          xaxis: { ...LAYOUT.xaxis, tickprefix: "$", rangemode: "tozero" },
          yaxis: { automargin: true, type: "category" },
        });
      } catch (err) {
        if (live()) failed(node, err);
      }
    }));
  }

  function fillDatalist(node, values) {
    clear(node);
    for (const value of values) {
      if (value === null) continue;
      const option = document.createElement("option");
      option.value = value;
      node.appendChild(option);
    }
  }

  // -- top jobs, users, tags ----------------------------------------------------------------

  function topTable(node, summary, label) {
    clear(node);
    const rows = summary.groups.filter((g) => g.key !== null).slice(0, 8);
    if (!rows.length) {
      node.appendChild(el("caption", "empty", `No ${label} in this range.`));
      return;
    }
    const head = node.appendChild(el("tr"));
    for (const [text, cls] of [[label, ""], ["Calls", "num"], ["Cost", "num"]]) head.appendChild(el("th", cls, text));
    for (const group of rows) {
      const tr = node.appendChild(el("tr"));
      const name = tr.appendChild(el("td", null, group.key));
      name.title = group.key;
      tr.appendChild(el("td", "num", count(group.calls)));
      tr.appendChild(el("td", "num", money(group.cost)));
    }
  }

  async function loadTop(group, live) {
    const node = $(`top-${group}`);
    try {
      const summary = await request("/api/costs/summary", { ...rangeParams(), group_by: group });
      if (live()) topTable(node, summary, group === "job" ? "Job" : "User");
    } catch (err) {
      if (live()) failed(node, err);
    }
  }

  async function loadTags(live) {
    const select = $("tag-key");
    const node = $("top-tag");
    const previous = select.value;
    clear(select);
    for (const key of state.tagKeys) {
      const option = el("option", null, key);
      option.value = key;
      select.appendChild(option);
    }
    select.hidden = !state.tagKeys.length;
    if (!state.tagKeys.length) {
      clear(node).appendChild(el("caption", "empty", "No tags on recent events."));
      return;
    }
    select.value = state.tagKeys.includes(previous) ? previous : state.tagKeys[0];
    try {
      const summary = await request("/api/costs/summary",
                                    { ...rangeParams(), group_by: `tag:${select.value}` });
      if (live()) topTable(node, summary, select.value);
    } catch (err) {
      if (live()) failed(node, err);
    }
  }

  // -- budgets ---------------------------------------------------------------------------------

  async function loadBudgets(live) {
    const node = $("budgets");
    let data;
    try {
      data = await request("/api/budgets/status", { project: state.project });
    } catch (err) {
      if (!live()) return;
      if (err.status === 404) empty(node, "Budgets are not available on this server.");
      else failed(node, err);
      return;
    }
    if (!live()) return;
    if (!data.budgets.length) {
      empty(node, "No budgets yet. Create one with POST /api/budgets.");
      return;
    }
    clear(node);
    for (const budget of data.budgets) node.appendChild(budgetRow(budget));
  }

  function budgetRow(budget) {
    const row = el("div", "budget");
    row.dataset.budgetId = String(budget.id);
    const head = row.appendChild(el("div", "budget-head"));
    head.appendChild(el("span", "budget-name", `${budget.name} · ${budget.period}` +
                        (budget.action === "block" ? " · blocks" : "")));
    head.appendChild(el("span", null, `${money(budget.spent)} of ${money(budget.amount)}`));
    // The bar's scale reaches the largest threshold (or spend) so every tick is on it.
    const top = Math.max(100, ...budget.thresholds, budget.percent);
    const bar = row.appendChild(el("div", "bar"));
    const fill = bar.appendChild(el("div", "bar-fill"));
    const passed = budget.thresholds.filter((t) => budget.percent >= t);
    if (budget.percent >= 100) fill.classList.add("over");
    else if (passed.length) fill.classList.add("warn");
    fill.style.width = `${Math.min(100, (budget.percent / top) * 100)}%`;
    for (const threshold of budget.thresholds) {
      const tick = bar.appendChild(el("div", "tick"));
      tick.style.left = `${(threshold / top) * 100}%`;
      tick.title = `${threshold}%`;
      const label = bar.appendChild(el("span", "tick-label", `${threshold}%`));
      label.style.left = `${(threshold / top) * 100}%`;
      if (threshold / top > 0.95) label.classList.add("end");
    }
    if (budget.forecast !== null && Number(budget.amount) > 0) {
      const share = (Number(budget.forecast) / Number(budget.amount)) * 100;
      const mark = bar.appendChild(el("div", "bar-forecast"));
      mark.style.left = `${Math.min(100, (share / top) * 100)}%`;
      mark.title = `forecast ${money(budget.forecast)}`;
    }
    const foot = row.appendChild(el("div", "budget-foot"));
    foot.appendChild(el("span", null, `${budget.percent.toFixed(1)}% used` +
                        (budget.forecast !== null ? ` · forecast ${money(budget.forecast)}` : "")));
    foot.appendChild(el("span", null, budget.resets_at
      ? `resets ${new Date(budget.resets_at).toLocaleString()}` : "never resets"));
    return row;
  }

  // -- recommendations ---------------------------------------------------------------------

  async function loadRecommendations(live) {
    const node = $("recommendations");
    let data;
    try {
      data = await request("/api/recommendations", { project: state.project, days: $("range").value });
    } catch (err) {
      if (!live()) return;
      if (err.status === 404) empty(node, "Recommendations are not available on this server.");
      else failed(node, err);
      return;
    }
    if (!live()) return;
    if (!data.recommendations.length) {
      empty(node, "No recommendations: nothing to save on the recent spend.");
      return;
    }
    clear(node);
    for (const rec of data.recommendations.slice(0, 6)) node.appendChild(recommendationCard(rec));
  }

  function recommendationCard(rec) {
    const card = el("div", "rec");
    card.dataset.kind = rec.kind;
    const head = card.appendChild(el("div", "rec-head"));
    head.appendChild(el("span", "rec-title", rec.title));
    head.appendChild(el("span", "rec-saving", `save ${money(rec.monthly_savings)}/mo`));
    card.appendChild(el("div", "rec-detail", rec.detail));
    const foot = card.appendChild(el("div", "rec-foot"));
    const ev = rec.evidence;
    const left = foot.appendChild(el("span"));
    left.appendChild(el("span", `badge ${rec.confidence}`, `${rec.confidence} confidence`));
    left.appendChild(document.createTextNode(` ${count(ev.calls)} calls, ${money(ev.cost)}`));
    const button = foot.appendChild(el("button", "secondary", "Show events"));
    button.type = "button";
    button.addEventListener("click", () => followRecommendation(rec));
    return card;
  }

  function followRecommendation(rec) {
    // Open the evidence: the events the recommendation was computed from.
    const ev = rec.evidence;
    const filters = { model: ev.model || "", provider: ev.provider || "", job: "", user: "",
                      status: rec.kind === "failed_calls" ? "error" : "" };
    if (ev.details && typeof ev.details.job === "string") filters.job = ev.details.job;
    for (const [name, value] of Object.entries(filters)) $("filters").elements[name].value = value;
    applyFilters();
    $("events-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // -- events --------------------------------------------------------------------------------

  function applyFilters(event) {
    if (event) event.preventDefault();
    state.filters = {};
    for (const input of $("filters").elements) {
      if (input.name && input.value.trim()) state.filters[input.name] = input.value.trim();
    }
    const gen = state.gen;
    loadEvents(() => gen === state.gen, true);
  }

  async function loadEvents(live, reset) {
    const body = $("events").tBodies[0];
    if (reset) state.cursor = null;
    try {
      const page = await request("/api/events", { ...rangeParams(), ...state.filters, limit: 25,
                                                  cursor: state.cursor });
      if (!live()) return;
      if (reset) clear(body);
      for (const event of page.events) body.appendChild(eventRow(event));
      if (reset && !page.events.length) {
        const tr = body.appendChild(el("tr"));
        const td = tr.appendChild(el("td", "empty", "No events match."));
        td.colSpan = 10;
      }
      if (reset && !Object.keys(state.filters).length) {
        // Tag keys seen on recent events, the most varied first (a constant tag says little).
        const values = new Map();
        for (const event of page.events) {
          for (const [key, value] of Object.entries(event.tags || {})) {
            if (!values.has(key)) values.set(key, new Set());
            values.get(key).add(String(value));
          }
        }
        state.tagKeys = [...values.keys()].sort((a, b) =>
          values.get(b).size - values.get(a).size || a.localeCompare(b));
      }
      state.cursor = page.next_cursor;
      $("more").hidden = !page.next_cursor;
    } catch (err) {
      if (live() && err.status !== 401) {
        clear(body);
        const td = body.appendChild(el("tr")).appendChild(el("td", "empty", `Could not load: ${err.message}`));
        td.colSpan = 10;
      }
    }
  }

  function eventRow(event) {
    const tr = el("tr");
    tr.dataset.eventId = event.id;
    const usage = event.usage || {};
    const cells = [
      [new Date(event.timestamp).toLocaleString(), ""], [event.provider, ""], [event.model, ""],
      [event.job_id || "", ""], [event.user_id || "", ""],
      [count(usage.input_tokens), "num"], [count(usage.output_tokens), "num"],
      [event.priced ? money(event.cost) : "unpriced", "num"],
      [event.latency_ms === null ? "" : `${Math.round(event.latency_ms)} ms`, "num"],
      [event.status, `status-${event.status}`],
    ];
    for (const [text, cls] of cells) tr.appendChild(el("td", cls, text));
    return tr;
  }

  async function exportCsv() {
    const button = $("export");
    button.disabled = true;
    try {
      // fetch + blob: the token stays in a header, never in a URL.
      const response = await request("/api/costs/export", { ...rangeParams(), ...state.filters }, true);
      const blob = await response.blob();
      const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = match ? match[1] : "llmlab-costs.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (err) {
      if (err.status !== 401) notice(`Export failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // -- wiring --------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("project").addEventListener("change", (e) => selectProject(e.target.value));
    $("range").addEventListener("change", refreshAll);
    $("interval").addEventListener("change", () => loadTimeseries(((g) => () => g === state.gen)(state.gen)));
    $("tag-key").addEventListener("change", () => loadTags(((g) => () => g === state.gen)(state.gen)));
    $("filters").addEventListener("submit", applyFilters);
    $("f-clear").addEventListener("click", () => {
      for (const input of $("filters").elements) if (input.name) input.value = "";
      applyFilters();
    });
    $("more").addEventListener("click", () => loadEvents(((g) => () => g === state.gen)(state.gen), false));
    $("export").addEventListener("click", exportCsv);
    if (sessionStorage.getItem(KEYS.access)) {
      start().catch((err) => { if (err.status !== 401) showLogin(err.message); });
    } else {
      showLogin("");
    }
  });
})();
