// Onboarding: a project without events shows how to send the first one (an ingest key, shown
// once, and the exact ``llmlab.init(...)`` call), then polls and turns into the overview as
// soon as an event arrives.

import { request, send } from "./api.js";
import { $ } from "./dom.js";
import { canManage, describe, showSecret } from "./ui.js";

/** How often a waiting page asks whether the first event has arrived. */
export const POLL_MS = 2000;
/** How far back "has this project ever had an event" looks (the API caps ranges; see below). */
const LOOK_BACK_DAYS = 365;
// Keys created on this page, kept in memory only: a reload never shows one again.
const created = new Map();
let timer = null;
let poll = null;

/** Remember the ingest key just created for ``projectId`` (shown once on its onboarding). */
export function remember(projectId, key) {
  created.set(String(projectId), key);
}

/** Whether ``project`` has any event (in the last year, or the server's longest range). */
export async function hasEvents(project) {
  const start = new Date(Date.now() - LOOK_BACK_DAYS * 24 * 3600 * 1000).toISOString();
  try {
    return (await request("/api/events", { project, start, limit: 1 })).events.length > 0;
  } catch (err) {
    if (err.status !== 400 && err.status !== 422) throw err;
    // A server with a shorter MAX_RANGE_DAYS: its default window (30 days).
    return (await request("/api/events", { project, limit: 1 })).events.length > 0;
  }
}

function snippet(info, key) {
  return [
    "import llmlab",
    "",
    "llmlab.init(",
    `    api_key="${key || "<the ingest key>"}",`,
    `    base_url="${window.location.origin}",`,
    `    project="${info.slug}",`,
    ")",
  ].join("\n");
}

function draw(info) {
  const key = created.get(String(info.id));
  $("ob-project").textContent = info.name;
  $("ob-snippet").textContent = snippet(info, key);
  $("ob-error").textContent = "";
  $("ob-create-key").hidden = Boolean(key) || !canManage(info);
  if (key) {
    showSecret($("ob-key-box"), key);
    // Shown once: leaving this page (or the first event) forgets it.
    created.delete(String(info.id));
  } else {
    $("ob-key-box").hidden = true;
  }
}

/** Show the onboarding of ``info`` and call ``arrived()`` once its first event is stored. */
export function show(info, live, arrived) {
  stop();
  draw(info);
  $("ob-status").textContent = "Waiting for the first event… (this page checks every few seconds)";
  poll = async () => {
    if (!live()) return stop();
    if (document.visibilityState !== "visible") return undefined;
    try {
      if (await hasEvents(String(info.id))) {
        stop();
        if (live()) arrived();
      }
    } catch (err) {
      if (err.status !== 401) $("ob-status").textContent = `Could not check: ${err.message}; trying again.`;
    }
    return undefined;
  };
  timer = setInterval(poll, POLL_MS);
  $("ob-create-key").onclick = async () => {
    $("ob-create-key").disabled = true;
    try {
      const key = await send("POST", "/api/keys", { project_id: info.id, name: "ingest",
                                                    scopes: ["ingest"] });
      remember(info.id, key.key);
      draw(info);
    } catch (err) {
      if (err.status !== 401) $("ob-error").textContent = describe(err);
    } finally {
      $("ob-create-key").disabled = false;
    }
  };
}

export function stop() {
  if (timer) clearInterval(timer);
  timer = null;
  poll = null;
}

document.addEventListener("visibilitychange", () => {
  if (poll && document.visibilityState === "visible") poll();
});
