// The view lives in the query string, so a reload, a shared link or the back button gives the
// same page: ?project=1&range=custom&from=2026-11-01&to=2026-11-14&by=hour&view=job&key=nightly.

export const VIEWS = ["overview", "model", "provider", "job", "user", "tag", "event"];
/** Management pages (``key`` is the budget being edited, or the webhook whose log is open). */
export const PAGES = ["budgets", "projects", "members", "keys", "webhooks"];
export const FILTERS = ["model", "provider", "job", "user", "status"];
const DEFAULTS = { view: "overview", range: "30d", by: "day" };
// Key order of the query string (stable URLs are easier to read and compare).
const ORDER = ["project", "range", "from", "to", "by", "view", "tag", "key", "event", "at", "back",
               ...FILTERS.map((f) => `f_${f}`)];

/** The view described by ``search`` (a query string), defaults filled in. */
export function parse(search) {
  const q = new URLSearchParams(search);
  const view = {
    project: q.get("project") || null,
    range: q.get("range") || DEFAULTS.range,
    from: q.get("from") || "", to: q.get("to") || "",
    by: q.get("by") === "hour" ? "hour" : DEFAULTS.by,
    // ``?event=<id>`` alone is a link to that event.
    view: [...VIEWS, ...PAGES].includes(q.get("view")) ? q.get("view")
      : q.get("event") ? "event" : DEFAULTS.view,
    tag: q.get("tag") || "", key: q.get("key") || "",
    event: q.get("event") || "", at: q.get("at") || "", back: q.get("back") || "",
    filters: {},
  };
  for (const name of FILTERS) {
    const value = q.get(`f_${name}`);
    if (value) view.filters[name] = value;
  }
  if (view.range !== "custom") view.from = view.to = "";
  return view;
}

/** The query string of ``view`` ("?…"), defaults left out. */
export function format(view) {
  const flat = { ...view };
  for (const [name, value] of Object.entries(view.filters || {})) flat[`f_${name}`] = value;
  const q = new URLSearchParams();
  for (const key of ORDER) {
    const value = flat[key];
    if (value === undefined || value === null || value === "" || DEFAULTS[key] === value) continue;
    q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "?";
}

/** ``view`` with ``changes`` applied (a new object; ``filters`` replaced when given). */
export function withChanges(view, changes) {
  return { ...view, filters: { ...view.filters }, ...changes };
}
