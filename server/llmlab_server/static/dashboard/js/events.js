// Event lists (the overview's recent events, a drill-down's events) and the event detail.

import { request } from "./api.js";
import { $, clear, el, failure, link } from "./dom.js";
import { count, money, ms, timestamp } from "./format.js";

const COLUMNS = [["Time", ""], ["Model", ""], ["Provider", ""], ["Job", ""], ["User", ""],
                 ["In", "num"], ["Out", "num"], ["Latency", "num"], ["Status", ""],
                 ["Cost", "num cost"]];
// Events seen in a list, so opening one needs no request (a reload or a link fetches it by id).
const seen = new Map();

/** One page of events at a time, newest first, with "Load more" (cursor pages). */
export class EventList {
  constructor(table, more, { hrefFor, navigate, pageSize = 25 }) {
    this.table = table;
    this.more = more;
    this.hrefFor = hrefFor;
    this.navigate = navigate;
    this.pageSize = pageSize;
    this.cursor = null;
    this.pages = 0;
    this.params = {};
    clear(table);
    const head = table.appendChild(el("thead")).appendChild(el("tr"));
    for (const [text, cls] of COLUMNS) head.appendChild(el("th", cls, text));
    this.body = table.appendChild(el("tbody"));
  }

  /**
   * Load the first page for ``params`` (or the next one); ``live()`` false drops the answer.
   * ``quiet``: an auto-refresh, the rows shown stay until the new ones arrive (no placeholders).
   */
  async load(params, live, reset = true, quiet = false) {
    if (reset) {
      this.params = params;
      this.cursor = null;
      this.pages = 0;
    }
    if (reset && !quiet) {
      clear(this.body);
      for (let i = 0; i < 5; i += 1) {
        const td = this.body.appendChild(el("tr", "skeleton-row")).appendChild(el("td"));
        td.colSpan = COLUMNS.length;
        td.appendChild(el("div", "skeleton line"));
      }
      this.more.hidden = true;
    }
    try {
      const page = await request("/api/events", { ...this.params, limit: this.pageSize,
                                                  cursor: this.cursor });
      if (!live()) return null;
      if (reset) clear(this.body);
      this.pages += 1;
      for (const event of page.events) this.body.appendChild(this.row(event));
      if (reset && !page.events.length) this.message("No events match.");
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      return page;
    } catch (err) {
      if (!live() || err.status === 401) return null;
      if (reset) clear(this.body);
      const td = this.body.appendChild(el("tr")).appendChild(el("td"));
      td.colSpan = COLUMNS.length;
      failure(td, err, () => this.load(this.params, live, reset));
      return null;
    }
  }

  /** Only the first page is shown (an auto-refresh would otherwise drop the pages loaded). */
  get firstPageOnly() {
    return this.pages <= 1;
  }

  message(text) {
    const td = this.body.appendChild(el("tr")).appendChild(el("td", "empty", text));
    td.colSpan = COLUMNS.length;
  }

  row(event) {
    seen.set(event.id, event);
    const tr = el("tr", "clickable");
    tr.dataset.eventId = event.id;
    const href = this.hrefFor(event);
    const usage = event.usage || {};
    const time = tr.appendChild(el("td"));
    time.appendChild(link(timestamp(event.timestamp), href, this.navigate));
    const cells = [
      [event.model, ""], [event.provider, ""], [event.job_id || "", ""], [event.user_id || "", ""],
      [count(usage.input_tokens), "num"], [count(usage.output_tokens), "num"],
      [event.latency_ms === null ? "" : ms(event.latency_ms), "num"],
      [event.status, `status-${event.status}`],
      [event.priced ? money(event.cost) : "unpriced", "num cost"],
    ];
    for (const [text, cls] of cells) tr.appendChild(el("td", cls, text));
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      this.navigate(href);
    });
    return tr;
  }
}

/** The event ``id`` of ``project``: from a list seen, else ``GET /api/events/<id>`` (null: 404). */
export async function findEvent(project, id) {
  if (seen.has(id)) return seen.get(id);
  try {
    return await request(`/api/events/${encodeURIComponent(id)}`, { project });
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

const yesNo = (value) => (value ? "yes" : "no");
const orDash = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

/** Whose price the counted cost is (``priced``: it has one; ``server_priced``: the server's). */
function source(event) {
  if (!event.priced) return "nobody: the model has no known price (unpriced)";
  return event.server_priced ? "the server's catalogue (the SDK sent no cost)" : "the SDK";
}

/** Every stored field of ``event``, in groups; fields the page does not know go under "Other". */
export function renderEvent(node, event) {
  clear(node);
  const usage = event.usage || {};
  const groups = [
    ["Call", [["Time (UTC)", timestamp(event.timestamp)], ["Received", timestamp(event.received_at)],
              ["Provider", event.provider], ["Model (returned)", event.model],
              ["Model (requested)", orDash(event.requested_model)], ["Operation", event.operation],
              ["Status", event.status], ["Error type", orDash(event.error_type)],
              ["Service tier", orDash(event.service_tier)], ["Stream", yesNo(event.stream)],
              ["Estimated usage", event.estimated ? "yes (stream ended early: tokens estimated)" : "no"]]],
    ["Cost", [["Cost", event.priced ? money(event.cost) : "unpriced"],
              ["Exact cost", `${event.cost} USD`],
              ["Tool fees (web search, file search, containers …)", `${event.tools_cost ?? "0"} USD`],
              ["Server's price", event.server_cost === null ? "—" : `${event.server_cost} USD`],
              ["Provider's own figure", event.provider_cost == null ? "—" : `${event.provider_cost} USD`],
              ["Provider and llmlab disagree", yesNo(event.provider_cost_mismatch)],
              ["Cost counted from", source(event)],
              ["SDK and server disagree", yesNo(event.cost_mismatch)],
              ["Pricing version", orDash(event.pricing_version)]]],
    ["Tokens", Object.entries(usage).map(([name, value]) => [name.replaceAll("_", " "), count(value)])],
    ["Tool uses", Object.entries(event.tools || {}).map(([name, value]) => [name.replaceAll("_", " "), count(value)])],
    ["Timing", [["Latency", ms(event.latency_ms)], ["Time to first byte", ms(event.ttfb_ms)]]],
    ["Attribution", [["Project id", event.project_id], ["Job", orDash(event.job_id)],
                     ["User", orDash(event.user_id)], ["Function", orDash(event.function)],
                     ["Environment", orDash(event.environment)]]],
    ["Tags", Object.entries(event.tags || {}).map(([name, value]) => [name, typeof value === "string"
      ? value : JSON.stringify(value)])],
  ];
  const known = new Set(["id", "timestamp", "received_at", "provider", "model", "requested_model",
    "operation", "status", "error_type", "service_tier", "stream", "estimated", "cost", "server_cost",
    "priced", "server_priced", "cost_mismatch", "pricing_version", "usage", "latency_ms", "ttfb_ms",
    "project_id", "job_id", "user_id", "function", "environment", "tags", "tools", "tools_cost",
    "provider_cost", "provider_cost_mismatch"]);
  const other = Object.entries(event).filter(([name]) => !known.has(name))
    .map(([name, value]) => [name, typeof value === "object" ? JSON.stringify(value) : orDash(value)]);
  if (other.length) groups.push(["Other", other]);
  for (const [title, rows] of groups) {
    const section = node.appendChild(el("section", "field-group"));
    section.appendChild(el("h3", null, title));
    if (!rows.length) {
      section.appendChild(el("p", "muted", "none"));
      continue;
    }
    const dl = section.appendChild(el("dl"));
    for (const [name, value] of rows) {
      const dt = dl.appendChild(el("dt", null, name));
      dt.dataset.field = name;
      const dd = dl.appendChild(el("dd", null, value));
      if (name === "Status" || name === "Error type") dd.classList.add(`status-${event.status}`);
    }
  }
  $("event-id").textContent = event.id;
}

/** Download the events of ``params`` as CSV (fetch + blob: the token stays in a header). */
export async function exportCsv(button, params, notice) {
  button.disabled = true;
  try {
    const response = await request("/api/costs/export", params, true);
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
