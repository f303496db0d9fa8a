// Auto-refresh: every few seconds while the tab is visible (document.visibilityState), the
// page asks one cheap question (the range's totals, from the rollups) and redraws only when
// the answer changed. A hidden tab asks nothing; coming back asks at once.

import { $ } from "./dom.js";

export const REFRESH_MS = 5000;
let timer = null;
let tick = null;

function label() {
  const node = $("live");
  node.hidden = !tick;
  if (!tick) return;
  const visible = document.visibilityState === "visible";
  node.classList.toggle("paused", !visible);
  node.textContent = visible ? `Live: updates every ${REFRESH_MS / 1000} s` : "Paused while the tab is hidden";
}

/** Run ``step()`` every ``REFRESH_MS`` while the tab is visible, until `stop`. */
export function start(step) {
  stop();
  tick = step;
  timer = setInterval(() => {
    if (document.visibilityState === "visible" && tick) tick();
  }, REFRESH_MS);
  label();
}

export function stop() {
  if (timer) clearInterval(timer);
  timer = null;
  tick = null;
  label();
}

export function running() {
  return Boolean(tick);
}

document.addEventListener("visibilitychange", () => {
  label();
  if (tick && document.visibilityState === "visible") tick();
});
