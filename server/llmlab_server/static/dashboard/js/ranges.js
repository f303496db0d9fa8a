// Date ranges in the project's time zone (its IANA ``timezone``, set on the settings page):
// presets, custom days, and the previous period of the same length that the cards compare
// with. Day buckets, "today" and "this month" all follow that zone.

/** The zone of the shown project (a live binding: `setZone` changes it for every importer). */
export let TZ = "UTC";
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
export const MAX_DAYS = 366;
export const PRESETS = {
  today: "Today", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
  mtd: "This month", lm: "Last month", custom: "Custom",
};
const formats = new Map();

/** Use ``name`` (an IANA zone; UTC when empty or unknown to the browser) from now on. */
export function setZone(name) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name || "UTC" });
    TZ = name || "UTC";
  } catch (_) {
    TZ = "UTC";
  }
}

/** ``{year, month (1-12), day, hour, minute}`` of ``date``'s wall time in ``tz``. */
export function wall(date, tz = TZ) {
  if (!formats.has(tz)) {
    formats.set(tz, new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric" }));
  }
  const parts = Object.fromEntries(formats.get(tz).formatToParts(date).map((p) => [p.type, Number(p.value)]));
  return { year: parts.year, month: parts.month, day: parts.day, hour: parts.hour % 24,
           minute: parts.minute, second: parts.second };
}

function offset(date, tz) {
  const w = wall(date, tz);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) -
    Math.floor(date.getTime() / 1000) * 1000;
}

/** The instant of local midnight of ``year``-``month`` (0-11, may overflow)-``day`` in ``tz``. */
export function midnightOf(year, month, day, tz = TZ) {
  const guess = Date.UTC(year, month, day);
  let t = guess - offset(new Date(guess), tz);
  t = guess - offset(new Date(t), tz);  // again, in case a DST change lies in between
  return new Date(t);
}

function midnight(date, tz = TZ) {
  const w = wall(date, tz);
  return midnightOf(w.year, w.month - 1, w.day, tz);
}

const pad = (n) => String(n).padStart(2, "0");

/** ``YYYY-MM-DD`` (``unit`` day) or ``YYYY-MM-DDTHH:00`` (hour) of ``date`` in ``tz``. */
export function bucketLabel(date, unit = "day", tz = TZ) {
  const w = wall(new Date(date), tz);
  const text = `${w.year}-${pad(w.month)}-${pad(w.day)}`;
  return unit === "hour" ? `${text}T${pad(w.hour)}:00` : text;
}

/** The next full hour: the API's own default end, so ranges match whole rollup hours. */
export function nextHour(now) {
  return new Date(Math.floor(now.getTime() / HOUR) * HOUR + HOUR);
}

function parseDay(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!match) return null;
  const [year, month, day] = match.slice(1).map(Number);
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (Number.isNaN(probe.getTime()) || probe.getUTCDate() !== day) return null;
  return { year, month: month - 1, day };
}

/** Why a custom range is refused, or null when ``from``..``to`` (days, inclusive) is usable. */
export function customProblem(from, to, now = new Date()) {
  const start = parseDay(from);
  const last = parseDay(to);
  if (!start || !last) return "Pick a first and a last day.";
  const days = (Date.UTC(last.year, last.month, last.day) - Date.UTC(start.year, start.month, start.day)) / DAY;
  if (days < 0) return "The last day is before the first.";
  if (midnightOf(start.year, start.month, start.day) > now) return "The range starts in the future.";
  if (days + 1 > MAX_DAYS) return `A range is at most ${MAX_DAYS} days.`;
  return null;
}

/** The first instant of the month ``delta`` months from ``now``'s, in the zone. */
export function monthStart(now, delta = 0) {
  const w = wall(now);
  return midnightOf(w.year, w.month - 1 + delta, 1);
}

/**
 * ``{start, end, label}`` (Dates, end exclusive) of the view's range in the zone; presets end
 * at the next full hour, a custom range at the end of its last day (or the next hour if sooner).
 */
export function resolve(view, now = new Date()) {
  const end = nextHour(now);
  const days = { today: 1, "7d": 7, "30d": 30, "90d": 90 }[view.range];
  if (days) {
    const w = wall(now);
    return { start: midnightOf(w.year, w.month - 1, w.day - (days - 1)), end, label: PRESETS[view.range] };
  }
  if (view.range === "mtd") return { start: monthStart(now), end, label: PRESETS.mtd };
  if (view.range === "lm") return { start: monthStart(now, -1), end: monthStart(now), label: PRESETS.lm };
  if (view.range === "custom" && !customProblem(view.from, view.to, now)) {
    const first = parseDay(view.from);
    const last = parseDay(view.to);
    const stop = midnightOf(last.year, last.month, last.day + 1);
    return { start: midnightOf(first.year, first.month, first.day), end: stop < end ? stop : end,
             label: PRESETS.custom };
  }
  return resolve({ range: "30d" }, now);
}

/** The period of the same length just before ``range``. */
export function previous(range) {
  const length = range.end - range.start;
  return { start: new Date(range.start - length), end: new Date(range.start) };
}

/** Whether ``date`` is a local midnight in the zone. */
export function isMidnight(date) {
  return midnight(date).getTime() === date.getTime();
}

/** Query parameters of a range for the summary, timeseries, events and export routes. */
export function params(range) {
  return { start: range.start.toISOString(), end: range.end.toISOString(), tz: TZ };
}

export { DAY, HOUR, midnight };
