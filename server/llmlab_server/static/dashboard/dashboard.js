// llmlab dashboard: the entry module. It owns the page's state, which lives in the URL
// (url-state.js): every control navigates to a new query string, and render() draws what the
// query string says, reloading only the panels whose inputs changed. The back button and a
// reload therefore give the same view. Modules: api (tokens, fetch), ranges (periods in the
// project's time zone),
// cards (figures and their change against the previous period),
// overview / detail / events (panels), charts (plotly, themed), theme, format, dom;
// pages (budgets, settings, webhooks: management), onboarding (a project without events),
// live (auto-refresh), ui (forms and tables of the management pages); shell (the state and
// navigation every view shares), overview-page (the overview or a new project's onboarding).
// Everything taken from data is rendered with textContent (never innerHTML): the CSP forbids
// inline script, and escaping by construction keeps model names, job ids and tags inert.

import * as account from "./js/account.js";
import * as api from "./js/api.js";
import * as detail from "./js/detail.js";
import { $, clear, el, link } from "./js/dom.js";
import { EventList, exportCsv, findEvent, renderEvent } from "./js/events.js";
import { day, isoDay } from "./js/format.js";
import * as live from "./js/live.js";
import * as onboarding from "./js/onboarding.js";
import * as overviewPage from "./js/overview-page.js";
import * as pages from "./js/pages.js";
import * as ranges from "./js/ranges.js";
import { busy, context, current, href, navigate, notice, onRender, projectInfo,
         reloadProjects, state } from "./js/shell.js";
import * as theme from "./js/theme.js";
import * as url from "./js/url-state.js";

let drilled = null;  // the detail view's EventList

// -- the page ------------------------------------------------------------------------------

function rangeText(range) {
  const tz = ranges.TZ;
  const span = (start, end) => {
    if (ranges.isMidnight(start) && ranges.isMidnight(end)) {
      const last = new Date(end - 1);
      return isoDay(last, tz) === isoDay(start, tz) ? day(start, tz) : `${day(start, tz)} – ${day(last, tz)}`;
    }
    const hhmm = (w) => `${String(w.hour).padStart(2, "0")}:${String(w.minute).padStart(2, "0")}`;
    const time = (d) => `${day(d, tz)} ${hhmm(ranges.wall(d))}`;
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
    $("from").value = isoDay(range.start, ranges.TZ);
    $("to").value = isoDay(new Date(range.end - 1), ranges.TZ);
  }
  const text = rangeText(range);
  $("range-label").textContent = `${range.label}: ${text.now} (${ranges.TZ})`;
  $("tz").textContent = ranges.TZ;
  $("range-compare").textContent = view.view === "event" ? "" : `· compared with ${text.before}`;
  for (const a of document.querySelectorAll(".to-overview, #home")) {
    a.href = href({ view: "overview", key: "", event: "", at: "", back: "" });
  }
  pages.markTabs(view, href);
}

async function render() {
  const view = url.parse(window.location.search);
  if (!state.projects.length) {
    await firstProject();
    return;
  }
  if (!state.projects.some((p) => String(p.id) === view.project)) {
    const saved = sessionStorage.getItem(api.KEYS.project);
    view.project = String((state.projects.find((p) => String(p.id) === saved) || state.projects[0]).id);
    history.replaceState(null, "", url.format(view));
  }
  sessionStorage.setItem(api.KEYS.project, view.project);
  ranges.setZone(projectInfo(view.project)?.timezone);
  if (view.range === "custom" && ranges.customProblem(view.from, view.to)) {
    notice(`Custom range ignored: ${ranges.customProblem(view.from, view.to)}`);
  }
  state.view = view;
  const range = ranges.resolve(view);
  showControls(view, range);
  const page = Boolean(pages.PAGES[view.view]);
  // The range and buckets mean nothing on a management page.
  $("range-line").hidden = page;
  for (const id of ["range", "interval"]) $(id).closest("label").hidden = page;
  if (page) $("custom-range").hidden = true;
  if (view.view !== "overview") {
    $("overview-view").hidden = $("onboarding-view").hidden = true;
    onboarding.stop();
    live.stop();
  }
  $("detail-view").hidden = !detail.KINDS[view.view];
  $("event-view").hidden = view.view !== "event";
  if (!page) pages.hideAll();
  const scope = [view.project, view.range, view.from, view.to, ranges.TZ].join("|");
  const jobs = [];
  if (view.view === "overview") {
    document.title = "llmlab — LLM costs";
    jobs.push(overviewPage.show(view, scope, range));
  } else if (page) {
    notice("");
    state.shown = { overview: null, detail: null };
    jobs.push(pages.show(context("page", null)));
  } else if (detail.KINDS[view.view]) {
    document.title = `${detail.title(view).join(" ")} — llmlab`;
    jobs.push(...showDetail(view, scope, range));
  } else {
    document.title = "Event — llmlab";
    jobs.push(showEvent(view));
  }
  await Promise.all(jobs.map(busy));
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
  drilled.hrefFor = (e) => href({ view: "event", event: e.id, at: "", back: view.view });
  if (filter) {
    $("d-events-wrap").hidden = false;
    jobs.push(drilled.load({ project: view.project, ...ranges.params(range), ...filter }, current("d-events")));
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
  const isLive = current("event");
  $("event-id").textContent = view.event;
  clear(node).appendChild(el("div", "skeleton block"));
  try {
    const event = await findEvent(view.project, view.event);
    if (!isLive()) return;
    if (!event) {
      clear(node).appendChild(el("div", "empty", "No such event in this project."));
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
  state.withEvents.clear();
  live.stop();
  onboarding.stop();
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
  await reloadProjects();
  await busy(render());
}

/** No project yet: the projects page, whose form creates the first one. */
async function firstProject() {
  state.view = { ...url.parse("?view=projects"), project: null };
  if (window.location.search !== "?view=projects") history.replaceState(null, "", "?view=projects");
  for (const id of ["overview-view", "onboarding-view", "detail-view", "event-view", "range-line"]) {
    $(id).hidden = true;
  }
  pages.markTabs(state.view, href);
  notice("Welcome! Create your first project below: the page then shows how to send its first event.");
  await pages.show(context("page", null));
}

function filtersFromForm() {
  const filters = {};
  for (const input of $("filters").elements) {
    if (input.name && input.value.trim()) filters[input.name] = input.value.trim();
  }
  return filters;
}

function wire() {
  onRender(render);
  api.whenSignedOut(signOut);
  $("theme").value = theme.choice();
  $("theme").addEventListener("change", (e) => theme.choose(e.target.value));
  $("login-form").addEventListener("submit", login);
  account.wire(start);
  $("logout").addEventListener("click", () => { api.logout(); signOut("Signed out."); });
  // Another project: the same management page, or its overview (filters and drill-down reset).
  $("project").addEventListener("change", (e) => navigate(href({
    project: e.target.value, view: pages.PAGES[state.view.view] ? state.view.view : "overview",
    key: "", tag: "", event: "", at: "", back: "", filters: {} })));
  $("range").addEventListener("change", (e) => {
    if (e.target.value !== "custom") {
      navigate(href({ range: e.target.value, from: "", to: "" }));
      return;
    }
    const range = ranges.resolve(state.view);
    $("from").value = isoDay(range.start, ranges.TZ);
    $("to").value = isoDay(new Date(range.end - 1), ranges.TZ);
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
  for (const a of document.querySelectorAll(".to-overview, #home, #tabs a")) {
    a.addEventListener("click", (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey) return;
      e.preventDefault();
      navigate(a.getAttribute("href"));
    });
  }
  overviewPage.wire();
  drilled = new EventList($("d-events"), $("d-more"), { navigate, hrefFor: () => "?" });
  $("d-more").addEventListener("click", () => busy(drilled.load(drilled.params, current("d-events"), false)));
  $("export").addEventListener("click", () => exportCsv($("export"), {
    project: state.view.project, ...ranges.params(ranges.resolve(state.view)), ...state.view.filters },
  notice));
  window.addEventListener("popstate", () => { if (!$("app-view").hidden) busy(render()); });
  pages.wire();
  if (sessionStorage.getItem(api.KEYS.access)) {
    start().catch((err) => { if (err.status !== 401) showLogin(err.message); });
  } else {
    showLogin("");
  }
}

wire();
