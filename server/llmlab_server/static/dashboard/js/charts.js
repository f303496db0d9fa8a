// plotly.js charts that follow the page's theme (colours come from the CSS variables).

import { clear, empty, loaded, skeleton } from "./dom.js";
import { onChange } from "./theme.js";

export const COLORS = ["#3b5bdb", "#2f9e44", "#f08c00", "#ae3ec9", "#1098ad", "#e03131"];
const CONFIG = { displayModeBar: false, responsive: true };
const drawn = new Set();

function themed() {
  const css = getComputedStyle(document.documentElement);
  const ink = css.getPropertyValue("--ink").trim();
  const grid = css.getPropertyValue("--grid").trim();
  return {
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: ink },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 60, r: 16, t: 8, b: 40 }, showlegend: false,
    xaxis: { gridcolor: grid, automargin: true },
    yaxis: { gridcolor: grid, tickprefix: "$", rangemode: "tozero", automargin: true },
    hoverlabel: { font: { family: "system-ui, sans-serif" } },
  };
}

/**
 * Tick settings of a money axis reaching ``max`` USD, by the page's one money rule: ticks in
 * whole cents ("$0.05", never "$0.0500" or two "$0.01" ticks) unless the whole axis is under
 * a cent, then two significant digits ("$0.0040").
 */
export function moneyAxis(max) {
  const top = Math.max(Number(max) || 0, 0);
  if (top === 0) return { tickformat: ",.2f" };
  const rough = top / 5;
  const base = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * base).find((s) => s >= rough);
  if (top < 0.01) return { tickformat: ",.2r", dtick: step, tick0: 0 };
  return { tickformat: ",.2f", dtick: Math.max(step, 0.01), tick0: 0 };
}

/** Draw (or redraw in place) ``traces`` in ``node``; ``onClick(point)`` for bar drill-down. */
export function plot(node, traces, layout, onClick) {
  loaded(node);
  if (!window.Plotly) {
    empty(node, "The chart library did not load.");
    return;
  }
  if (!drawn.has(node)) clear(node);  // a placeholder or a message, not a chart
  const base = themed();
  const merged = { ...base, ...layout,
                   xaxis: { ...base.xaxis, ...(layout || {}).xaxis },
                   yaxis: { ...base.yaxis, ...(layout || {}).yaxis } };
  window.Plotly.react(node, traces, merged, CONFIG);
  drawn.add(node);
  node.onPointClick = onClick || null;
  if (!node.dataset.clickBound) {
    node.dataset.clickBound = "true";
    node.on("plotly_click", (data) => { if (node.onPointClick) node.onPointClick(data.points[0]); });
  }
  node.classList.toggle("clickable", Boolean(onClick));
}

function remove(node) {
  // Plotly keeps its state on the node: purge it before touching the node's children, or a
  // later react() would update a chart whose elements are gone (a blank panel).
  if (window.Plotly && node.classList.contains("js-plotly-plot")) window.Plotly.purge(node);
  drawn.delete(node);
  delete node.dataset.clickBound;
}

/** Remove a chart and say why (``message``). */
export function purge(node, message) {
  loaded(node);
  remove(node);
  empty(node, message);
}

/** A placeholder where a chart is coming. */
export function chartLoading(node) {
  remove(node);
  skeleton(node);
}

onChange(() => {
  if (!window.Plotly) return;
  const base = themed();
  for (const node of drawn) {
    if (!node.isConnected || !node.classList.contains("js-plotly-plot")) continue;
    window.Plotly.relayout(node, { "font.color": base.font.color, "xaxis.gridcolor": base.xaxis.gridcolor,
                                   "yaxis.gridcolor": base.yaxis.gridcolor });
  }
});
