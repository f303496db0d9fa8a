// Number, money and time formats: one rule each, used by every panel.

const CENTS = { minimumFractionDigits: 2, maximumFractionDigits: 2 };
const SMALL = { minimumSignificantDigits: 2, maximumSignificantDigits: 2 };

/**
 * USD with one rule everywhere: cents ("$1,234.50", "$0.06"); an amount under one cent that is
 * not zero keeps two significant digits ("$0.0048") so a single call never reads "$0.00".
 */
export function money(value) {
  const n = Number(value || 0);
  const abs = Math.abs(n);
  // 0.00995 and above round to a whole cent; below, cents would show zero.
  const text = abs === 0 || abs >= 0.00995
    ? abs.toLocaleString("en-US", CENTS) : abs.toLocaleString("en-US", SMALL);
  return `${n < 0 ? "-" : ""}$${text}`;
}

export function count(value) {
  return Number(value || 0).toLocaleString("en-US");
}

/** 1234567 → "1.2M": big token counts on cards. */
export function compact(value) {
  return Number(value || 0).toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 1 });
}

export function percent(ratio, digits = 1) {
  return `${(Number(ratio || 0) * 100).toFixed(digits)}%`;
}

/** A duration: "812 ms", "2,311 ms"; from ten seconds on, "41.6 s". */
export function ms(value) {
  if (value === null || value === undefined) return "—";
  if (value >= 10000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.round(value).toLocaleString("en-US")} ms`;
}

/** Change from ``previous`` to ``current`` as "+12%" / "−3%"; null when there is no base. */
export function change(current, previous) {
  const now = Number(current || 0);
  const before = Number(previous || 0);
  if (before === 0) return now === 0 ? "±0%" : null;
  const pct = ((now - before) / before) * 100;
  if (pct === 0) return "±0%";
  const rounded = Math.abs(pct) < 10 ? pct.toFixed(1) : pct.toFixed(0);
  return `${pct > 0 ? "+" : "−"}${rounded.replace("-", "")}%`;
}

const DATES = new Map();
const TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
  minute: "2-digit", second: "2-digit", hourCycle: "h23" });

/** "6 Dec 2026" in ``tz`` (the project's zone for ranges). */
export function day(date, tz = "UTC") {
  if (!DATES.has(tz)) {
    DATES.set(tz, new Intl.DateTimeFormat("en-GB", { timeZone: tz, day: "numeric", month: "short", year: "numeric" }));
  }
  return DATES.get(tz).format(date);
}

/** "2026-12-06 07:21:04" (UTC) for a timestamp. */
export function timestamp(value) {
  const parts = Object.fromEntries(TIME.formatToParts(new Date(value)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** YYYY-MM-DD of ``date`` in ``tz``. */
export function isoDay(date, tz = "UTC") {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(date);
}
