// The management pages and the tabs that lead to them: budgets, projects, members, API keys,
// webhooks. Each page is a view of the URL (?view=keys…), drawn by its own module.

import * as budgets from "./budgets.js";
import { $ } from "./dom.js";
import * as settings from "./settings.js";
import * as webhooks from "./webhooks.js";

export const PAGES = {
  budgets: { title: "Budgets", show: budgets.show },
  projects: { title: "Projects", show: settings.showProjects },
  members: { title: "Members", show: settings.showMembers },
  keys: { title: "API keys", show: settings.showKeys },
  webhooks: { title: "Webhooks", show: webhooks.show },
};

/** Point the tabs at the current project and mark the one shown (``aria-current``). */
export function markTabs(view, href) {
  for (const a of document.querySelectorAll("#tabs a[data-page]")) {
    const page = a.dataset.page;
    a.href = href({ view: page, key: "", event: "", at: "", back: "" });
    const current = page === view.view || (page === "overview" && !PAGES[view.view]);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

/** Show the page of ``ctx.view`` (hiding the others) and load it. */
export function show(ctx) {
  for (const name of Object.keys(PAGES)) $(`${name}-view`).hidden = name !== ctx.view.view;
  for (const node of document.querySelectorAll(".project-name")) node.textContent = ctx.info ? ctx.info.name : "";
  document.title = `${PAGES[ctx.view.view].title} — llmlab`;
  if (ctx.view.view !== "keys") settings.leave();
  if (ctx.view.view !== "webhooks") webhooks.leave();
  return PAGES[ctx.view.view].show(ctx);
}

export function hideAll() {
  for (const name of Object.keys(PAGES)) $(`${name}-view`).hidden = true;
  settings.leave();
  webhooks.leave();
}

export function wire() {
  budgets.wire();
  settings.wire();
  webhooks.wire();
}
