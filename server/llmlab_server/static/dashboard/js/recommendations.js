// The recommendations panel: savings per month, the events behind each, and the team's
// decisions (dismiss, snooze 7 days, restore), stored per project by the API.

import { request, send } from "./api.js";
import { $, clear, el, empty, failure, link, loaded, skeleton } from "./dom.js";
import { count, money, timestamp } from "./format.js";

/** A fixed window: the API extrapolates the window's saving to a month (× 30 / days). */
export const REC_DAYS = 30;
const SNOOZE_DAYS = 7;
const SHOWN = 6;
let shownFor = null;  // the context of the panel drawn last (the toggle redraws it)

export async function loadRecommendations(ctx) {
  const node = $("recommendations");
  const toggle = $("rec-show-dismissed");
  $("rec-window").textContent = `per month, learnt from the last ${REC_DAYS} days`;
  shownFor = ctx;
  if (!toggle.dataset.bound) {
    toggle.dataset.bound = "1";
    toggle.addEventListener("change", () => loadRecommendations({ ...shownFor, live: () => true }));
  }
  skeleton(node, 4);
  let data;
  try {
    // A short window would swing the per-month figure with a few days' traffic.
    data = await request("/api/recommendations", { project: ctx.project, days: REC_DAYS,
                                                   include_dismissed: toggle.checked || "" });
  } catch (err) {
    if (!ctx.live() || err.status === 401) return;
    if (err.status === 404) empty(node, "Recommendations are not available on this server.");
    else failure(node, err, () => loadRecommendations(ctx));
    return;
  }
  if (!ctx.live()) return;
  loaded(node);
  const hidden = data.hidden ? ` ${count(data.hidden)} dismissed or snoozed` +
    (toggle.checked ? " (shown)." : ": tick “show dismissed” to see them.") : "";
  if (!data.recommendations.length) {
    empty(node, `No recommendations: nothing to save on the recent spend.${hidden}`);
    return;
  }
  clear(node);
  for (const rec of data.recommendations.slice(0, SHOWN)) node.appendChild(card(ctx, rec));
  if (hidden) node.appendChild(el("p", "muted rec-hidden", hidden.trim()));
}

/** Dismiss, snooze or restore ``rec``, then redraw the panel (errors go to the notice line). */
async function decide(ctx, rec, action, button) {
  button.disabled = true;
  const body = { project_id: Number(ctx.project) };
  if (action === "snooze") body.until = new Date(Date.now() + SNOOZE_DAYS * 86400000).toISOString();
  try {
    const id = encodeURIComponent(rec.id);
    // Literal routes (one per action): the test of the page's API calls reads them.
    if (action === "dismiss") await send("POST", `/api/recommendations/${id}/dismiss`, body);
    else if (action === "snooze") await send("POST", `/api/recommendations/${id}/snooze`, body);
    else await send("POST", `/api/recommendations/${id}/restore`, body);
    ctx.notice("");
    await loadRecommendations({ ...ctx, live: () => true });
  } catch (err) {
    button.disabled = false;
    if (err.status === 401) return;
    ctx.notice(err.status === 403 ? "Viewers cannot dismiss recommendations: ask a member of the project."
      : `Could not ${action} the recommendation: ${err.message}`);
  }
}

function actionButton(ctx, rec, action, text, label) {
  const button = el("button", "secondary small-button", text);
  button.type = "button";
  button.dataset.action = action;
  button.setAttribute("aria-label", `${label}: ${rec.title}`);
  button.addEventListener("click", () => decide(ctx, rec, action, button));
  return button;
}

function card(ctx, rec) {
  const node = el("div", rec.state === "active" ? "rec" : "rec rec-hidden-card");
  node.dataset.kind = rec.kind;
  node.dataset.id = rec.id;
  node.dataset.state = rec.state;
  const head = node.appendChild(el("div", "rec-head"));
  head.appendChild(el("span", "rec-title", rec.title));
  head.appendChild(el("span", "rec-saving", `save ${money(rec.monthly_savings)}/mo`));
  if (rec.state !== "active") {
    node.appendChild(el("div", "rec-state", rec.state === "snoozed"
      ? `Snoozed until ${timestamp(rec.snoozed_until).slice(0, 16)} UTC` : "Dismissed"));
  }
  node.appendChild(el("div", "rec-detail", rec.detail));
  const foot = node.appendChild(el("div", "rec-foot"));
  const ev = rec.evidence;
  const left = foot.appendChild(el("span"));
  left.appendChild(el("span", `badge ${rec.confidence}`, `${rec.confidence} confidence`));
  left.appendChild(document.createTextNode(` ${count(ev.calls)} calls, ${money(ev.cost)} in ${REC_DAYS} days`));
  const actions = foot.appendChild(el("span", "rec-actions"));
  // The evidence: a link to the events the recommendation was computed from (in the URL).
  const filters = {};
  if (ev.model) filters.model = ev.model;
  if (ev.provider) filters.provider = ev.provider;
  if (ev.details && typeof ev.details.job === "string") filters.job = ev.details.job;
  if (rec.kind === "failed_calls") filters.status = "error";
  const evidence = actions.appendChild(link("Show events", ctx.href({ filters }), (target) => ctx.navigate(
    target, () => $("events-panel").scrollIntoView({ behavior: "smooth", block: "start" })),
  "button-link small-button"));
  evidence.setAttribute("aria-label", `Show the events behind: ${rec.title}`);
  // Viewers read only; a member or above decides for the team.
  if (ctx.info && ctx.info.role === "viewer") return node;
  if (rec.state === "active") {
    actions.appendChild(actionButton(ctx, rec, "dismiss", "Dismiss", "Dismiss"));
    actions.appendChild(actionButton(ctx, rec, "snooze", `Snooze ${SNOOZE_DAYS} days`,
                                     `Snooze for ${SNOOZE_DAYS} days`));
  } else {
    actions.appendChild(actionButton(ctx, rec, "restore", "Restore", "Restore"));
  }
  return node;
}
