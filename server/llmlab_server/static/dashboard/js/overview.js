// The overview: cards compared with the previous period, charts, rankings and budgets
// (recommendations are in recommendations.js, the recent events in events.js).

import { request } from "./api.js";
import { cardsLoading, setCard, versus } from "./cards.js";
import { COLORS, chartLoading, moneyAxis, plot, purge } from "./charts.js";
import { $, clear, el, empty, failure, link, loaded, skeleton } from "./dom.js";
import { compact, count, money, percent, timestamp } from "./format.js";
import { DAY, TZ, bucketLabel, monthStart as monthStartOf, params } from "./ranges.js";

/** Days of a month below which a run-rate forecast is too thin to trust. */
const THIN_DAYS = 3;

export async function loadCards(ctx) {
  const ids = ["card-range", "card-calls", "card-tokens", "card-errors", "card-month", "card-forecast"];
  if (!ctx.quiet) cardsLoading(ids);
  const now = new Date();
  const monthStart = monthStartOf(now);  // in the project's zone
  const monthEnd = monthStartOf(now, 1);
  const base = { project: ctx.project };
  try {
    const [range, prev, month] = await Promise.all([
      request("/api/costs/summary", { ...base, ...params(ctx.range) }),
      request("/api/costs/summary", { ...base, ...params(ctx.prev) }),
      request("/api/costs/summary", { ...base, start: monthStart.toISOString(), tz: TZ }),
    ]);
    if (!ctx.live()) return;
    const t = range.totals;
    const p = prev.totals;
    setCard("card-range", money(t.cost), versus(t.cost, p.cost, money(p.cost)));
    setCard("card-calls", count(t.calls), versus(t.calls, p.calls, count(p.calls), false));
    setCard("card-tokens", compact(t.tokens.total_tokens),
            versus(t.tokens.total_tokens, p.tokens.total_tokens, compact(p.tokens.total_tokens), false));
    const errorsSub = versus(t.error_rate, p.error_rate, percent(p.error_rate));
    errorsSub.unshift(document.createTextNode(`${count(t.errors)} failed · `));
    setCard("card-errors", percent(t.error_rate), errorsSub);
    setCard("card-month", money(month.totals.cost), `${count(month.totals.calls)} calls since ` +
            `${bucketLabel(monthStart)}`);
    const elapsedDays = (now - monthStart) / DAY;
    const forecast = Number(month.totals.cost) * ((monthEnd - monthStart) / DAY) / elapsedDays;
    if (elapsedDays < THIN_DAYS) {
      setCard("card-forecast", `≈ ${money(forecast)}`,
              `uncertain: only ${elapsedDays.toFixed(1)} days of this month so far`, true);
    } else {
      setCard("card-forecast", money(forecast), "at this month's run rate");
    }
  } catch (err) {
    if (!ctx.live() || err.status === 401) return;
    for (const id of ids) setCard(id, "—", "");
    ctx.notice(`Could not load the totals: ${err.message}`, () => loadCards(ctx));
  }
}

export async function loadTimeseries(ctx) {
  const node = $("chart-timeseries");
  const interval = ctx.view.by;
  if (!ctx.quiet) chartLoading(node);
  try {
    const series = await request("/api/costs/timeseries", { project: ctx.project,
                                                           ...params(ctx.range), interval });
    if (!ctx.live()) return;
    if (!series.points.some((p) => Number(p.cost) > 0 || p.calls > 0)) {
      purge(node, "No spend in this range.");
      return;
    }
    drawSeries(node, series.points.map((p) => String(p.start).slice(0, interval === "day" ? 10 : 16)),
               series.points.map((p) => Number(p.cost)), series.points.map((p) => p.calls), interval);
  } catch (err) {
    if (ctx.live() && err.status !== 401) failure(node, err, () => loadTimeseries(ctx));
  }
}

/** A cost line over time (``x``: UTC wall times without offset: plotly's axes have no zones). */
export function drawSeries(node, x, y, calls, interval) {
  plot(node, [{
    type: "scatter", mode: "lines+markers", x, y,
    line: { color: COLORS[0], width: 2, shape: "linear" }, marker: { size: interval === "day" ? 5 : 3 },
    fill: "tozeroy", fillcolor: "rgba(59,91,219,0.12)", customdata: calls, hovertext: y.map(money),
    hovertemplate: "%{x}<br>%{hovertext}<br>%{customdata} calls<extra></extra>",
  }], { xaxis: { type: "date" }, yaxis: moneyAxis(Math.max(...y)) });
}

export async function loadBreakdowns(ctx) {
  await Promise.all(["model", "provider"].map(async function load(group) {
    const node = $(`chart-${group}`);
    if (!ctx.quiet) chartLoading(node);
    try {
      const summary = await request("/api/costs/summary", { project: ctx.project, ...params(ctx.range),
                                                           group_by: group });
      if (!ctx.live()) return;
      fillDatalist($(`dl-${group}`), summary.groups.map((g) => g.key));
      const rows = summary.groups.filter((g) => g.key !== null).slice(0, 10).reverse();
      if (!rows.length) {
        purge(node, "No spend in this range.");
        return;
      }
      plot(node, [{
        type: "bar", orientation: "h", x: rows.map((g) => Number(g.cost)),
        y: rows.map((g) => g.key), marker: { color: group === "model" ? COLORS[0] : COLORS[1] },
        customdata: rows.map((g) => g.calls), hovertext: rows.map((g) => money(g.cost)),
        hovertemplate: "%{y}<br>%{hovertext}<br>%{customdata} calls<extra></extra>",
      }], {
        margin: { l: 10, r: 16, t: 8, b: 36 },
        xaxis: { tickprefix: "$", rangemode: "tozero", ...moneyAxis(Math.max(...rows.map((g) => Number(g.cost)))) },
        yaxis: { automargin: true, type: "category", tickprefix: "", tickformat: "" },
      }, (point) => ctx.navigate(ctx.href({ view: group, key: point.y, tag: "", event: "", at: "" })));
    } catch (err) {
      if (ctx.live() && err.status !== 401) failure(node, err, () => load(group));
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

/** Rows shown in each ranking panel; the rest are one "other" row (the API sums them). */
export const TOP_LIMIT = 8;

function topTable(ctx, node, summary, label, hrefOf) {
  clear(node);
  loaded(node);
  const rows = summary.groups.filter((g) => g.key !== null);
  const unnamed = summary.groups.find((g) => g.key === null);
  if (!rows.length && !unnamed && !summary.other) {
    node.appendChild(el("caption", "empty", `No ${label.toLowerCase()} in this range.`));
    return;
  }
  const head = node.appendChild(el("tr"));
  for (const [text, cls] of [[label, ""], ["Calls", "num"], ["Cost", "num"]]) head.appendChild(el("th", cls, text));
  const row = (name, group, cls) => {
    const tr = node.appendChild(el("tr", cls));
    tr.appendChild(name);
    tr.appendChild(el("td", "num", count(group.calls)));
    tr.appendChild(el("td", "num", money(group.cost)));
    return tr;
  };
  for (const group of rows) {
    const name = el("td");
    name.appendChild(link(group.key, hrefOf(group.key), ctx.navigate)).title = group.key;
    row(name, group);
  }
  // Calls without this dimension (no job, no user, no such tag) are spend too.
  if (unnamed) row(el("td", "muted", `(no ${label.toLowerCase()})`), unnamed, "unnamed");
  if (summary.other) {
    // group_count counts every group, the unnamed one included.
    const more = summary.group_count - summary.groups.length;
    row(el("td", "muted", `${count(more)} more`), summary.other, "other");
  }
}

function tableLoading(node) {
  clear(node);
  node.setAttribute("aria-busy", "true");
  for (let i = 0; i < 4; i += 1) node.appendChild(el("tr")).appendChild(el("td")).appendChild(el("div", "skeleton line"));
}

function tableFailed(node, err, retry) {
  clear(node);
  const td = node.appendChild(el("tr")).appendChild(el("td"));
  failure(td, err, retry);
}

export async function loadTop(ctx, group) {
  const node = $(`top-${group}`);
  if (!ctx.quiet) tableLoading(node);
  try {
    const summary = await request("/api/costs/summary", { project: ctx.project, ...params(ctx.range),
                                                         group_by: group, limit: TOP_LIMIT });
    if (ctx.live()) {
      topTable(ctx, node, summary, group === "job" ? "Job" : "User",
               (key) => ctx.href({ view: group, key, tag: "" }));
    }
  } catch (err) {
    if (ctx.live() && err.status !== 401) tableFailed(node, err, () => loadTop(ctx, group));
  }
}

export async function loadTags(ctx, tagKeys) {
  const select = $("tag-key");
  const node = $("top-tag");
  clear(select);
  for (const key of tagKeys) {
    const option = el("option", null, key);
    option.value = key;
    select.appendChild(option);
  }
  select.hidden = !tagKeys.length;
  if (!tagKeys.length) {
    clear(node).appendChild(el("caption", "empty", "No tags on recent events."));
    loaded(node);
    return;
  }
  const key = tagKeys.includes(ctx.view.tag) ? ctx.view.tag : tagKeys[0];
  select.value = key;
  if (!ctx.quiet) tableLoading(node);
  try {
    const summary = await request("/api/costs/summary", { project: ctx.project, ...params(ctx.range),
                                                         group_by: `tag:${key}`, limit: TOP_LIMIT });
    if (ctx.live()) topTable(ctx, node, summary, key, (value) => ctx.href({ view: "tag", tag: key, key: value }));
  } catch (err) {
    if (ctx.live() && err.status !== 401) tableFailed(node, err, () => loadTags(ctx, tagKeys));
  }
}

export async function loadBudgets(ctx) {
  const node = $("budgets");
  if (!ctx.quiet) skeleton(node, 3);
  let data;
  try {
    data = await request("/api/budgets/status", { project: ctx.project });
  } catch (err) {
    if (!ctx.live() || err.status === 401) return;
    if (err.status === 404) empty(node, "Budgets are not available on this server.");
    else failure(node, err, () => loadBudgets(ctx));
    return;
  }
  if (!ctx.live()) return;
  loaded(node);
  if (!data.budgets.length) {
    const box = clear(node).appendChild(el("div", "empty", "No budgets yet. "));
    box.appendChild(link("Create a budget", ctx.href({ view: "budgets", key: "" }), ctx.navigate));
    return;
  }
  clear(node);
  for (const budget of data.budgets) node.appendChild(budgetRow(budget));
}

export function budgetRow(budget) {
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
    ? `resets ${timestamp(budget.resets_at).slice(0, 16)} UTC` : "never resets"));
  return row;
}
