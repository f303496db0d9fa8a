// The cards at the top of the overview and of a drill-down: a figure, a line under it, and
// its change against the previous period.

import { $, clear, el } from "./dom.js";
import { change } from "./format.js";

/** Write a card: ``value`` big, ``sub`` (text or nodes) under it; ``uncertain`` greys it. */
export function setCard(id, value, sub, uncertain = false) {
  const big = $(id);
  big.classList.remove("skeleton-text");
  big.textContent = value;
  const subNode = $(`${id}-sub`);
  clear(subNode);
  if (Array.isArray(sub)) for (const part of sub) subNode.appendChild(part);
  else subNode.textContent = sub || "";
  big.parentElement.classList.toggle("uncertain", uncertain);
}

/** Grey placeholders in the cards ``ids`` while they load. */
export function cardsLoading(ids) {
  for (const id of ids) {
    $(id).textContent = "";
    $(id).classList.add("skeleton-text");
    $(`${id}-sub`).textContent = "";
  }
}

/**
 * "+12% vs $40.00 before". ``costly``: a rise is bad news (spend, errors) and is coloured so;
 * other changes (calls, tokens) are shown without a verdict.
 */
export function versus(current, previous, shown, costly = true) {
  const delta = change(current, previous);
  const span = el("span", "delta");
  if (delta === null) {
    span.classList.add("none");
    span.textContent = "none in the previous period";
    return [span];
  }
  span.textContent = delta;
  const up = Number(current) > Number(previous);
  const down = Number(current) < Number(previous);
  if (costly && (up || down)) span.classList.add(up ? "worse" : "better");
  return [span, document.createTextNode(` vs ${shown} before`)];
}

