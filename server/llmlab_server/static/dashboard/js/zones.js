// A project's time zone on the projects page: shown in its row, changed in place by an admin
// (PATCH /api/projects/<id> {timezone}); the dashboard's ranges and day buckets follow it.

import { send } from "./api.js";
import { $, el } from "./dom.js";
import { button, canManage, describe } from "./ui.js";

/** Fill the shared ``<datalist id="tz-list">`` with the zones the browser knows (once). */
export function fillZoneList() {
  const list = $("tz-list");
  if (!list || list.childElementCount) return;
  const names = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  for (const name of ["UTC", ...names.filter((n) => n !== "UTC")]) {
    const option = document.createElement("option");
    option.value = name;
    list.appendChild(option);
  }
}

/** The zone of ``project``, with a "Change" button for owners and admins. */
export function zoneCell(project, context, reload) {
  const cell = el("span", "zone");
  const name = cell.appendChild(el("span", null, project.timezone || "UTC"));
  if (!canManage(project)) return cell;
  cell.appendChild(button("Change", () => {
    fillZoneList();
    const form = el("form", "inline-form");
    const input = form.appendChild(el("input"));
    input.value = project.timezone || "UTC";
    input.required = true;
    input.maxLength = 64;
    input.setAttribute("list", "tz-list");
    input.setAttribute("aria-label", `Time zone of ${project.name}`);
    form.appendChild(el("button", null, "Save")).type = "submit";
    const error = form.appendChild(el("span", "error"));
    error.setAttribute("role", "alert");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await send("PATCH", `/api/projects/${project.id}`, { timezone: input.value.trim() });
        await context.reloadProjects();
        await reload(context);
      } catch (err) {
        if (err.status !== 401) error.textContent = describe(err);
      }
    });
    cell.replaceChildren(form);
    input.focus();
  }, "secondary small-button", `Change the time zone of ${project.name}`));
  name.after(" ");
  return cell;
}
