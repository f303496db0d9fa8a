// A project's time zone on the projects page: shown in its row, changed in place by an admin
// (PATCH /api/projects/<id> {timezone}); the dashboard's ranges and day buckets follow it.

import { $ } from "./dom.js";
import { projectFieldCell } from "./ui.js";

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
  fillZoneList();
  return projectFieldCell(project, context, reload, {
    field: "timezone", value: project.timezone || "UTC", className: "zone",
    buttonText: "Change", buttonLabel: `Change the time zone of ${project.name}`,
    inputLabel: `Time zone of ${project.name}`, maxLength: 64, list: "tz-list",
  });
}
