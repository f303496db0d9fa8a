// The budgets page (?view=budgets): every budget's status bar with Edit and Delete, a form
// that creates a budget or edits the one in the URL (?view=budgets&key=<id>), and the alerts
// history. Writes need the admin or owner role; the server says so otherwise.

import { request, send } from "./api.js";
import { $, clear, el, empty, failure, link, skeleton } from "./dom.js";
import { money } from "./format.js";
import { budgetRow } from "./overview.js";
import { canManage, confirmButton, fillTable, onSubmit, tableFailed, tableLoading,
         when } from "./ui.js";

let ctx = null;
const SCOPE = ["job", "user", "model", "tag"];

export async function show(context) {
  ctx = context;
  await Promise.all([loadStatus(context), loadAlerts(context), loadForm(context)]);
}

async function loadStatus(context) {
  const node = $("m-budgets");
  skeleton(node, 3);
  let data;
  try {
    data = await request("/api/budgets/status", { project: context.project });
  } catch (err) {
    if (context.live() && err.status !== 401) failure(node, err, () => loadStatus(context));
    return;
  }
  if (!context.live()) return;
  if (!data.budgets.length) {
    empty(node, "No budgets yet: create the first one with the form below.");
    return;
  }
  clear(node);
  for (const budget of data.budgets) {
    const row = node.appendChild(budgetRow(budget));
    if (!canManage(context.info)) continue;
    const actions = row.appendChild(el("div", "budget-actions"));
    actions.appendChild(link("Edit", context.href({ view: "budgets", key: String(budget.id) }),
                             context.navigate, "button-link")).setAttribute("aria-label", `Edit ${budget.name}`);
    actions.appendChild(confirmButton("Delete", async () => {
      await send("DELETE", `/api/budgets/${budget.id}`);
      if (context.view.key === String(budget.id)) context.navigate(context.href({ key: "" }));
      else await show(context);
    }, `Delete ${budget.name}`));
  }
}

async function loadAlerts(context) {
  const table = $("m-alerts");
  tableLoading(table);
  try {
    const alerts = await request("/api/alerts", { project: context.project, limit: 50 });
    if (!context.live()) return;
    fillTable(table, ["Time (UTC)", "Budget", "Kind", "Threshold", "Spent of amount", "Message"],
              alerts.map((a) => [when(a.created_at), a.budget_name, a.kind, `${a.threshold}%`,
                                 `${money(a.spent)} of ${money(a.amount)}`, a.message]),
              "No alerts yet: one is recorded when a budget passes a threshold.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadAlerts(context));
  }
}

function fill(budget) {
  $("b-name").value = budget ? budget.name : "Monthly cap";
  $("b-amount").value = budget ? budget.amount : "";
  $("b-period").value = budget ? budget.period : "monthly";
  // A new budget's periods follow the project's zone unless told otherwise.
  $("b-timezone").value = budget ? budget.timezone : (ctx && ctx.info && ctx.info.timezone) || "UTC";
  $("b-thresholds").value = budget ? budget.thresholds.join(", ") : "50, 80, 100";
  $("b-action").value = budget ? budget.action : "alert";
  for (const name of SCOPE) $(`b-${name}`).value = budget ? budget.scope[name] || "" : "";
  $("budget-form-title").textContent = budget ? `Edit budget “${budget.name}”` : "New budget";
  $("b-submit").textContent = budget ? "Save budget" : "Create budget";
  $("b-cancel").hidden = !budget;
  $("b-error").textContent = "";
}

async function loadForm(context) {
  $("b-cancel").href = context.href({ view: "budgets", key: "" });
  const form = $("budget-form");
  form.hidden = !canManage(context.info);
  if (!context.view.key) {
    fill(null);
    return;
  }
  try {
    const budget = await request(`/api/budgets/${encodeURIComponent(context.view.key)}`);
    if (!context.live()) return;
    fill(budget);
    $("b-name").focus();
  } catch (err) {
    if (context.live() && err.status !== 401) {
      fill(null);
      $("b-error").textContent = `Budget ${context.view.key}: ${err.message}`;
    }
  }
}

function body() {
  const thresholds = $("b-thresholds").value.split(/[\s,;%]+/).filter(Boolean).map(Number);
  if (!thresholds.length || thresholds.some((t) => !Number.isInteger(t) || t < 1 || t > 1000)) {
    throw new Error("Thresholds are whole percentages from 1 to 1000, such as 50, 80, 100.");
  }
  const scope = {};
  for (const name of SCOPE) {
    const value = $(`b-${name}`).value.trim();
    if (value) scope[name] = value;
  }
  return { name: $("b-name").value.trim(), amount: $("b-amount").value.trim(),
           period: $("b-period").value, timezone: $("b-timezone").value.trim() || "UTC",
           thresholds, action: $("b-action").value, scope };
}

/** Wire the form once (the page keeps its elements; ``ctx`` is the page shown now). */
export function wire() {
  onSubmit($("budget-form"), "b-error", async () => {
    const fields = body();
    if (ctx.view.key) {
      await send("PATCH", `/api/budgets/${encodeURIComponent(ctx.view.key)}`, fields);
      ctx.navigate(ctx.href({ view: "budgets", key: "" }));
      return;
    }
    await send("POST", "/api/budgets", { project_id: Number(ctx.project), ...fields });
    fill(null);
    await Promise.all([loadStatus(ctx), loadAlerts(ctx)]);
  });
  $("b-cancel").addEventListener("click", (e) => {
    e.preventDefault();
    ctx.navigate(ctx.href({ view: "budgets", key: "" }));
  });
}
