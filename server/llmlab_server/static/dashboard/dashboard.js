// llmlab dashboard: the entry module. It owns the page's state, which lives in the URL
// (url-state.js): every control navigates to a new query string, and render() draws what the
// query string says, reloading only the panels whose inputs changed. The back button and a
// reload therefore give the same view. Modules: api (tokens, fetch), ranges (UTC periods),
// cards (figures and their change against the previous period),
// overview / detail / events (panels), charts (plotly, themed), theme, format, dom.
// Everything taken from data is rendered with textContent (never innerHTML): the CSP forbids
// inline script, and escaping by construction keeps model names, job ids and tags inert.

import * as api from "./js/api.js";
import * as detail from "./js/detail.js";
import { $, clear, el, link } from "./js/dom.js";
import { EventList, findEvent, renderEvent } from "./js/events.js";
import { day, isoDay } from "./js/format.js";
import * as overview from "./js/overview.js";
import * as ranges from "./js/ranges.js";
import * as theme from "./js/theme.js";
import * as url from "./js/url-state.js";

const state = {
  projects: [],
  view: url.parse(""),
  gens: {},          // per panel group: an answer for an older generation is dropped
  pending: 0,        // loads in flight (body[data-loading] is "false" at zero)
  shown: { overview: null, detail: null },  // what the hidden views still show
};
let recent = null;   // the overview's EventList
let drilled = null;  // the detail view's EventList

// -- navigation ----------------------------------------------------------------------------

function href(changes) {
  return url.format(url.withChanges(state.view, changes));
}

/** Go to ``target`` (a query string), adding a history entry, then run ``after``. */
function navigate(target, after) {
  if (target !== window.location.search && !(target === "?" && !window.location.search)) {
    history.pushState(null, "", target === "?" ? window.location.pathname : target);
  }
  render().then(() => { if (after) after(); });
}

function live(part) {
  const gen = (state.gens[part] = (state.gens[part] || 0) + 1);
  return () => gen === state.gens[part];
}

async function busy(promise) {
  state.pending += 1;
  document.body.dataset.loading = "true";
  try {
    await promise;
  } finally {
    state.pending -= 1;
    if (state.pending === 0) document.body.dataset.loading = "false";
  }
}

function notice(message, retry) {
  const node = $("notice");
  node.hidden = !message;
  clear(node);
  if (!message) return;
  node.appendChild(el("span", null, message));
  if (retry) {
    const button = node.appendChild(el("button", "secondary retry", "Retry"));
    button.type = "button";
    button.addEventListener("click", () => { notice(""); busy(retry()); });
  }
}

function context(part, range) {
  return { view: state.view, project: state.view.project, range, prev: ranges.previous(range),
           live: live(part), navigate, href, notice };
}

// -- the page ------------------------------------------------------------------------------

function rangeText(range) {
  const midnight = (d) => d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
  const span = (start, end) => {
    if (midnight(start) && midnight(end)) {
      const last = new Date(end - ranges.DAY);
      return last - start <= 0 ? day(start) : `${day(start)} – ${day(last)}`;
    }
    const time = (d) => `${day(d)} ${d.toISOString().slice(11, 16)}`;
    return `${time(start)} – ${time(end)}`;
  };
  return { now: span(range.start, range.end), before: span(...Object.values(ranges.previous(range))) };
}

function showControls(view, range) {
  $("project").value = view.project;
  $("range").value = view.range;
  $("interval").value = view.by;
  $("custom-range").hidden = view.range !== "custom";
  if (view.range === "custom") {
    $("from").value = isoDay(range.start);
    $("to").value = isoDay(new Date(range.end - 1));
  }
  const text = rangeText(range);
  $("range-label").textContent = `${range.label}: ${text.now} (UTC)`;
  $("range-compare").textContent = view.view === "event" ? "" : `· compared with ${text.before}`;
  for (const a of document.querySelectorAll(".to-overview, #home")) {
    a.href = href({ view: "overview", key: "", event: "", at: "", back: "" });
  }
}

async function render() {
  const view = url.parse(window.location.search);
  if (!state.projects.length) return;
  if (!state.projects.some((p) => String(p.id) === view.project)) {
    const saved = sessionStorage.getItem(api.KEYS.project);
    view.project = String((state.projects.find((p) => String(p.id) === saved) || state.projects[0]).id);
    history.replaceState(null, "", url.format(view));
  }
  sessionStorage.setItem(api.KEYS.project, view.project);
  if (view.range === "custom" && ranges.customProblem(view.from, view.to)) {
    notice(`Custom range ignored: ${ranges.customProblem(view.from, view.to)}`);
  }
  state.view = view;
  const range = ranges.resolve(view);
  showControls(view, range);
  $("overview-view").hidden = view.view !== "overview";
  $("detail-view").hidden = !detail.KINDS[view.view];
  $("event-view").hidden = view.view !== "event";
  const scope = [view.project, view.range, view.from, view.to].join("|");
  const jobs = [];
  if (view.view === "overview") {
    document.title = "llmlab — LLM costs";
    jobs.push(...showOverview(view, scope, range));
  } else if (detail.KINDS[view.view]) {
    document.title = `${detail.title(view).join(" ")} — llmlab`;
    jobs.push(...showDetail(view, scope, range));
  } else {
    document.title = "Event — llmlab";
    jobs.push(showEvent(view));
  }
  await Promise.all(jobs.map(busy));
}

function showOverview(view, scope, range) {
  const was = state.shown.overview;
  const now = { scope, by: view.by, tag: view.tag, filters: JSON.stringify(view.filters) };
  state.shown.overview = now;
  for (const input of $("filters").elements) {
    if (input.name) input.value = view.filters[input.name] || "";
  }
  const jobs = [];
  const fresh = !was || was.scope !== scope;
  if (fresh) {
    notice("");
    const ctx = context("overview", range);
    jobs.push(overview.loadCards(ctx), overview.loadBreakdowns(ctx), overview.loadBudgets(ctx),
              overview.loadRecommendations(ctx));
    // Rankings read raw events (no rollup): after the cheap rollup-backed panels.
    jobs.push(Promise.allSettled(jobs.slice()).then(() => Promise.all([
      overview.loadTop(ctx, "job"), overview.loadTop(ctx, "user"), loadTagPanel(range)])));
  } else if (was.tag !== now.tag) {
    jobs.push(loadTagPanel(range));
  }
  if (fresh || was.by !== now.by) jobs.push(overview.loadTimeseries(context("series", range)));
  if (fresh || was.filters !== now.filters) jobs.push(loadRecent(range));
  return jobs;
}

async function loadTagPanel(range) {
  const ctx = context("tags", range);
  if (!state.tagKeysFor || state.tagKeysFor !== ctx.view.project + ctx.range.start.toISOString()) {
    // Tag keys seen on recent events, the most varied first (a constant tag says little).
    const page = await api.request("/api/events", { project: ctx.project, ...ranges.params(range),
                                                   limit: 200 }).catch(() => ({ events: [] }));
    const values = new Map();
    for (const event of page.events) {
      for (const [key, value] of Object.entries(event.tags || {})) {
        if (!values.has(key)) values.set(key, new Set());
        values.get(key).add(String(value));
      }
    }
    state.tagKeys = [...values.keys()].sort((a, b) =>
      values.get(b).size - values.get(a).size || a.localeCompare(b));
    state.tagKeysFor = ctx.view.project + ctx.range.start.toISOString();
  }
  if (ctx.live()) await overview.loadTags(ctx, state.tagKeys);
}

function loadRecent(range) {
  const view = state.view;
  return recent.load({ project: view.project, ...ranges.params(range), ...view.filters },
                     live("events"));
}

function showDetail(view, scope, range) {
  detail.renderTitle(view);
  const now = [scope, view.view, view.tag, view.key, view.by].join("|");
  if (state.shown.detail === now) return [];
  state.shown.detail = now;
  notice("");
  const ctx = context("detail", range);
  const jobs = [detail.loadDetailCards(ctx), detail.loadDetailChart(ctx)];
  const filter = detail.eventFilter(view);
  drilled.hrefFor = (e) => href({ view: "event", event: e.id, at: e.timestamp, back: view.view });
  if (filter) {
    $("d-events-wrap").hidden = false;
    jobs.push(drilled.load({ project: view.project, ...ranges.params(range), ...filter }, live("d-events")));
  } else {
    $("d-events-wrap").hidden = true;
    $("d-more").hidden = true;
  }
  return jobs;
}

async function showEvent(view) {
  const crumbs = clear($("event-crumbs"));
  crumbs.appendChild(link("Overview", href({ view: "overview", key: "", event: "", at: "", back: "" }),
                          navigate, "to-overview"));
  if (detail.KINDS[view.back]) {
    crumbs.appendChild(document.createTextNode(" › "));
    const [kind, key] = detail.title({ ...view, view: view.back });
    crumbs.appendChild(link(`${kind} ${key}`, href({ view: view.back, event: "", at: "", back: "" }), navigate));
  }
  crumbs.appendChild(document.createTextNode(" › event"));
  const node = $("event-fields");
  const isLive = live("event");
  $("event-id").textContent = view.event;
  clear(node).appendChild(el("div", "skeleton block"));
  try {
    const event = await findEvent(view.project, view.event, view.at);
    if (!isLive()) return;
    if (!event) {
      clear(node).appendChild(el("div", "empty", "This event is not in this project (or the link lost its time)."));
      return;
    }
    renderEvent(node, event);
  } catch (err) {
    if (isLive() && err.status !== 401) {
      clear(node).appendChild(el("div", "failed", `Could not load: ${err.message}`));
    }
  }
}

// -- sign in, controls ----------------------------------------------------------------------

function showLogin(message) {
  $("app-view").hidden = true;
  $("controls").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  $("email").focus();
}

function signOut(message) {
  api.forgetSession();
  // Answers still in flight belong to the old session: bump every generation to drop them.
  for (const part of Object.keys(state.gens)) state.gens[part] += 1;
  state.shown = { overview: null, detail: null };
  state.projects = [];
  showLogin(message);
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    await api.login($("email").value, $("password").value);
    $("password").value = "";
    await start();
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? "Wrong email or password." : err.message;
  } finally {
    $("login-submit").disabled = false;
  }
}

async function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("controls").hidden = false;
  $("who").textContent = sessionStorage.getItem(api.KEYS.email) || "";
  $("tz").textContent = ranges.TZ;
  state.projects = await api.request("/api/projects");
  const select = clear($("project"));
  for (const project of state.projects) {
    const option = el("option", null, project.name);
    option.value = String(project.id);
    select.appendChild(option);
  }
  if (!state.projects.length) {
    notice("No projects yet: create one with POST /api/projects or `llmlab` CLI, then reload.");
    document.body.dataset.loading = "false";
    return;
  }
  await render();
}

function filtersFromForm() {
  const filters = {};
  for (const input of $("filters").elements) {
    if (input.name && input.value.trim()) filters[input.name] = input.value.trim();
  }
  return filters;
}

async function exportCsv() {
  const button = $("export");
  button.disabled = true;
  try {
    // fetch + blob: the token stays in a header, never in a URL.
    const range = ranges.resolve(state.view);
    const response = await api.request("/api/costs/export", {
      project: state.view.project, ...ranges.params(range), ...state.view.filters }, true);
    const blob = await response.blob();
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = match ? match[1] : "llmlab-costs.csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    if (err.status !== 401) notice(`Export failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function wire() {
  api.whenSignedOut(signOut);
  $("theme").value = theme.choice();
  $("theme").addEventListener("change", (e) => theme.choose(e.target.value));
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => { api.logout(); signOut("Signed out."); });
  $("project").addEventListener("change", (e) => navigate(href({
    project: e.target.value, view: "overview", key: "", tag: "", event: "", at: "", back: "",
    filters: {} })));
  $("range").addEventListener("change", (e) => {
    if (e.target.value !== "custom") {
      navigate(href({ range: e.target.value, from: "", to: "" }));
      return;
    }
    const range = ranges.resolve(state.view);
    $("from").value = isoDay(range.start);
    $("to").value = isoDay(new Date(range.end - 1));
    $("custom-range").hidden = false;
    $("from").focus();
  });
  $("custom-range").addEventListener("submit", (e) => {
    e.preventDefault();
    const problem = ranges.customProblem($("from").value, $("to").value);
    if (problem) {
      notice(problem);
      return;
    }
    notice("");
    navigate(href({ range: "custom", from: $("from").value, to: $("to").value }));
  });
  $("interval").addEventListener("change", (e) => navigate(href({ by: e.target.value })));
  $("tag-key").addEventListener("change", (e) => navigate(href({ tag: e.target.value })));
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    navigate(href({ filters: filtersFromForm() }));
  });
  $("f-clear").addEventListener("click", () => navigate(href({ filters: {} })));
  for (const a of document.querySelectorAll(".to-overview, #home")) {
    a.addEventListener("click", (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey) return;
      e.preventDefault();
      navigate(a.getAttribute("href"));
    });
  }
  recent = new EventList($("events"), $("more"), {
    navigate, hrefFor: (e) => href({ view: "event", event: e.id, at: e.timestamp, key: "", back: "" }) });
  drilled = new EventList($("d-events"), $("d-more"), { navigate, hrefFor: () => "?" });
  $("more").addEventListener("click", () => busy(recent.load(recent.params, live("events"), false)));
  $("d-more").addEventListener("click", () => busy(drilled.load(drilled.params, live("d-events"), false)));
  $("export").addEventListener("click", exportCsv);
  window.addEventListener("popstate", () => { if (state.projects.length) busy(render()); });
  if (sessionStorage.getItem(api.KEYS.access)) {
    start().catch((err) => { if (err.status !== 401) showLogin(err.message); });
  } else {
    showLogin("");
  }
}

wire();
