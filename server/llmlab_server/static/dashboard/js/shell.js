// The page's shared state and the few functions every view uses: the URL of a change
// (href), going there (navigate), generations that drop stale answers (current), the
// loading flag (busy), the notice line, and the context handed to each panel.

import { request } from "./api.js";
import { $, clear, el } from "./dom.js";
import { previous } from "./ranges.js";
import * as url from "./url-state.js";

export const state = {
  projects: [],
  view: url.parse(""),
  gens: {},          // per panel group: an answer for an older generation is dropped
  pending: 0,        // loads in flight (body[data-loading] is "false" at zero)
  shown: { overview: null, detail: null },  // what the hidden views still show
  withEvents: new Set(),  // projects known to have events (no onboarding)
  marker: null,      // the overview's totals when last drawn (auto-refresh compares them)
};
let renderer = async () => {};

/** The function that draws the view of the URL (dashboard.js's render). */
export function onRender(render) {
  renderer = render;
}

export function href(changes) {
  return url.format(url.withChanges(state.view, changes));
}

/** Go to ``target`` (a query string), adding a history entry, then run ``after``. */
export function navigate(target, after) {
  if (target !== window.location.search && !(target === "?" && !window.location.search)) {
    history.pushState(null, "", target === "?" ? window.location.pathname : target);
  }
  renderer().then(() => { if (after) after(); });
}

export function current(part) {
  const gen = (state.gens[part] = (state.gens[part] || 0) + 1);
  return () => gen === state.gens[part];
}

export async function busy(promise) {
  state.pending += 1;
  document.body.dataset.loading = "true";
  try {
    await promise;
  } finally {
    state.pending -= 1;
    if (state.pending === 0) document.body.dataset.loading = "false";
  }
}

export function notice(message, retry) {
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

export function projectInfo(id) {
  return state.projects.find((p) => String(p.id) === String(id)) || null;
}

export async function reloadProjects() {
  state.projects = await request("/api/projects");
  const select = clear($("project"));
  for (const project of state.projects) {
    const option = el("option", null, project.name);
    option.value = String(project.id);
    select.appendChild(option);
  }
  if (state.view.project) select.value = state.view.project;
}

export function context(part, range, quiet = false) {
  return { view: state.view, project: state.view.project, info: projectInfo(state.view.project),
           range, prev: range && previous(range), live: current(part), navigate, href, notice,
           reloadProjects, quiet };
}
