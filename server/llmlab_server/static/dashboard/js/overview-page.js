// The overview as a page: a project without events gets its onboarding (until the first
// event arrives); the others get the overview's panels, reloaded only where the view changed,
// and redrawn quietly by the auto-refresh when the range's totals move.

import { request } from "./api.js";
import { $ } from "./dom.js";
import { EventList } from "./events.js";
import * as live from "./live.js";
import * as onboarding from "./onboarding.js";
import * as overview from "./overview.js";
import * as ranges from "./ranges.js";
import { loadRecommendations } from "./recommendations.js";
import { busy, context, current, href, navigate, notice, projectInfo, state } from "./shell.js";

let recent = null;   // the overview's EventList (the events tail)

/** Build the events tail (once, when the page starts). */
export function wire() {
  recent = new EventList($("events"), $("more"), {
    navigate, hrefFor: (e) => href({ view: "event", event: e.id, at: "", key: "", back: "" }) });
  $("more").addEventListener("click", () => busy(recent.load(recent.params, current("events"), false)));
}

/** A project without events gets its onboarding; the others (or once one arrives) the overview. */
export async function show(view, scope, range) {
  const isLive = current("onboarding");
  if (!state.withEvents.has(view.project)) {
    let any = true;
    try {
      any = await onboarding.hasEvents(view.project);
    } catch (err) {
      if (err.status === 401) return;  // else: the overview's panels say what failed
    }
    if (!isLive()) return;
    if (!any) {
      $("overview-view").hidden = $("range-line").hidden = true;
      $("onboarding-view").hidden = false;
      live.stop();
      state.shown.overview = null;
      onboarding.show(projectInfo(view.project), isLive, () => {
        state.withEvents.add(view.project);
        navigate(window.location.search || "?");
      });
      return;
    }
    state.withEvents.add(view.project);
  }
  onboarding.stop();
  $("onboarding-view").hidden = true;
  $("overview-view").hidden = $("range-line").hidden = false;
  live.start(refresh);
  await Promise.all(showOverview(view, scope, range));
}

/** The range's totals: the overview redraws when they change (a new event, a late one). */
async function totals(range) {
  const summary = await request("/api/costs/summary", { project: state.view.project,
                                                             ...ranges.params(range) });
  return `${summary.totals.calls}|${summary.totals.cost}|${range.end.toISOString()}`;
}

/** Auto-refresh of the overview: quietly redraw what the new events change. */
async function refresh() {
  if (state.view.view !== "overview" || $("overview-view").hidden) return;
  const view = state.view;
  const range = ranges.resolve(view);
  const isLive = current("marker");
  let marker;
  try {
    marker = await totals(range);
  } catch (_) {
    return;  // the next tick tries again; panels keep what they show
  }
  if (!isLive() || marker === state.marker) return;
  state.marker = marker;
  const ctx = context("overview", range, true);
  const jobs = [overview.loadCards(ctx), overview.loadBreakdowns(ctx), overview.loadBudgets(ctx),
                overview.loadTop(ctx, "job"), overview.loadTop(ctx, "user"),
                overview.loadTimeseries(context("series", range, true))];
  if (recent.firstPageOnly) {
    jobs.push(recent.load({ project: view.project, ...ranges.params(range), ...view.filters },
                          current("events"), true, true));
  }
  await Promise.allSettled(jobs);
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
    state.marker = null;
    const isLive = current("marker");
    totals(range).then((m) => { if (isLive()) state.marker = m; }, () => {});
    const ctx = context("overview", range);
    jobs.push(overview.loadCards(ctx), overview.loadBreakdowns(ctx), overview.loadBudgets(ctx),
              loadRecommendations(ctx));
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
    const page = await request("/api/events", { project: ctx.project, ...ranges.params(range),
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
                     current("events"));
}
