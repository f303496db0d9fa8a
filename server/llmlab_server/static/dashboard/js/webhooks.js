// The webhooks page (?view=webhooks): create (the signing secret shown once), delete, send a
// signed test ping, and a webhook's delivery log (?view=webhooks&key=<id>).

import { request, send } from "./api.js";
import { $, link } from "./dom.js";
import { ms } from "./format.js";
import { button, canManage, confirmButton, describe, fillTable, forgetSecret, group, onSubmit,
         showSecret, tableFailed, tableLoading, when } from "./ui.js";

let ctx = null;
/** After a test ping, the list is read again this long later (the delivery runs in the background). */
const RECHECK_MS = 1500;

export async function show(context) {
  ctx = context;
  $("webhook-form").hidden = !canManage(context.info);
  $("w-notice").hidden = true;
  await Promise.all([loadWebhooks(context), loadDeliveries(context)]);
}

function lastDelivery(hook) {
  if (!hook.last_delivery_at) return "none yet";
  const text = `${hook.last_status || "?"} · ${when(hook.last_delivery_at)}`;
  return hook.last_error ? `${text} · ${hook.last_error}` : text;
}

async function loadWebhooks(context) {
  const table = $("m-webhooks");
  tableLoading(table);
  try {
    const hooks = await request("/api/webhooks", { project: context.project });
    if (!context.live()) return;
    const manage = canManage(context.info);
    const open = hooks.find((h) => String(h.id) === context.view.key);
    if (open) $("deliveries-of").textContent = `${open.name} · ${open.url}`;
    fillTable(table, ["Name", "URL", "Active", "Last delivery", ""], hooks.map((hook) => {
      const log = link("Delivery log", context.href({ view: "webhooks", key: String(hook.id) }),
                       context.navigate, "button-link");
      log.setAttribute("aria-label", `Delivery log of ${hook.name}`);
      const row = [hook.name, hook.url, hook.active ? "yes" : "no", lastDelivery(hook), group(
        manage ? button("Send test", () => sendTest(context, hook), "secondary", `Send a test to ${hook.name}`) : null,
        log,
        manage ? confirmButton("Delete", async () => {
          await send("DELETE", `/api/webhooks/${hook.id}`);
          if (context.view.key === String(hook.id)) context.navigate(context.href({ key: "" }));
          else await loadWebhooks(context);
        }, `Delete ${hook.name}`) : null)];
      row.id = hook.id;
      return row;
    }), "No webhooks yet: create one with the form above to receive budget alerts.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadWebhooks(context));
  }
}

function say(text) {
  const node = $("w-notice");
  node.hidden = !text;
  node.textContent = text;
}

async function sendTest(context, hook) {
  try {
    await send("POST", `/api/webhooks/${hook.id}/test`);
    say(`Test ping queued for ${hook.name}: its outcome shows under "Last delivery" and in the log.`);
  } catch (err) {
    if (err.status !== 401) say(`Test not sent: ${describe(err)}`);
    return;
  }
  setTimeout(() => {
    if (!context.live()) return;
    loadWebhooks(context);
    loadDeliveries(context);
  }, RECHECK_MS);
}

/** One delivery (GET /api/webhooks/<id>/deliveries): its try count, HTTP answer and error. */
function deliveryRow(d) {
  const outcome = d.status === "delivered" ? `delivered ${when(d.delivered_at)}`
    : d.status === "failed" && d.next_attempt_at ? `failed, next try ${when(d.next_attempt_at)}` : d.status;
  const row = [when(d.created_at), d.type, outcome, d.attempts, d.last_status_code ?? "—",
               d.last_latency_ms === null || d.last_latency_ms === undefined ? "—" : ms(d.last_latency_ms),
               d.last_error || ""];
  row.id = d.id;
  return row;
}

async function loadDeliveries(context) {
  const panel = $("deliveries-panel");
  const table = $("m-deliveries");
  panel.hidden = !context.view.key;
  if (!context.view.key) return;
  $("deliveries-of").textContent = `webhook ${context.view.key}`;
  tableLoading(table);
  try {
    const data = await request(`/api/webhooks/${encodeURIComponent(context.view.key)}/deliveries`,
                               { limit: 50 });
    if (!context.live()) return;
    fillTable(table, ["Queued (UTC)", "Type", "Status", "Tries", "HTTP", "Took", "Error"],
              data.deliveries.map(deliveryRow),
              "No deliveries yet: send a test, or wait for a budget alert.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadDeliveries(context));
  }
}

export function wire() {
  onSubmit($("webhook-form"), "w-error", async () => {
    const hook = await send("POST", "/api/webhooks", { project_id: Number(ctx.project),
                                                       name: $("w-name").value.trim(),
                                                       url: $("w-url").value.trim() });
    $("w-url").value = "";
    showSecret($("w-new"), hook.secret);
    await loadWebhooks(ctx);
  });
  $("w-done").addEventListener("click", () => forgetSecret($("w-new")));
}

export function leave() {
  forgetSecret($("w-new"));
}
