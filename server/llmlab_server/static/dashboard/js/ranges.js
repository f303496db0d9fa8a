// Date ranges in UTC (projects have no time zone in the API): presets, custom days, and the
// previous period of the same length that the cards compare with.

export const TZ = "UTC";
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
export const MAX_DAYS = 366;
export const PRESETS = {
  today: "Today", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
  mtd: "This month", lm: "Last month", custom: "Custom",
};

function midnight(date) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

/** The next full hour: the API's own default end, so ranges match whole rollup hours. */
export function nextHour(now) {
  return new Date(Math.floor(now.getTime() / HOUR) * HOUR + HOUR);
}

function parseDay(text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text || "")) return null;
  const date = new Date(`${text}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Why a custom range is refused, or null when ``from``..``to`` (days, inclusive) is usable. */
export function customProblem(from, to, now = new Date()) {
  const start = parseDay(from);
  const last = parseDay(to);
  if (!start || !last) return "Pick a first and a last day.";
  if (last < start) return "The last day is before the first.";
  if (start > now) return "The range starts in the future.";
  if ((last - start) / DAY + 1 > MAX_DAYS) return `A range is at most ${MAX_DAYS} days.`;
  return null;
}

/**
 * ``{start, end, label}`` (Dates, end exclusive) of the view's range; presets end at the next
 * full hour, a custom range at the end of its last day (or the next full hour if sooner).
 */
export function resolve(view, now = new Date()) {
  const end = nextHour(now);
  const today = midnight(now);
  const days = { today: 1, "7d": 7, "30d": 30, "90d": 90 }[view.range];
  if (days) return { start: new Date(today - (days - 1) * DAY), end, label: PRESETS[view.range] };
  if (view.range === "mtd") {
    return { start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), end,
             label: PRESETS.mtd };
  }
  if (view.range === "lm") {
    return { start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)),
             end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), label: PRESETS.lm };
  }
  if (view.range === "custom" && !customProblem(view.from, view.to, now)) {
    const last = new Date(parseDay(view.to).getTime() + DAY);
    return { start: parseDay(view.from), end: last < end ? last : end, label: PRESETS.custom };
  }
  return resolve({ range: "30d" }, now);
}

/** The period of the same length just before ``range``. */
export function previous(range) {
  const length = range.end - range.start;
  return { start: new Date(range.start - length), end: new Date(range.start) };
}

/** Query parameters of a range for the summary, timeseries, events and export routes. */
export function params(range) {
  return { start: range.start.toISOString(), end: range.end.toISOString(), tz: TZ };
}

export { DAY, HOUR };
