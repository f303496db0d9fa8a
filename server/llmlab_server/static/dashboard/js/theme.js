// Light or dark: the system's choice unless the user picked one (remembered in localStorage:
// a display preference only — tokens never go there).

const KEY = "llmlab.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");
const listeners = [];

export function choice() {
  const saved = localStorage.getItem(KEY);
  return saved === "light" || saved === "dark" ? saved : "system";
}

/** The theme in effect: "light" or "dark". */
export function current() {
  const picked = choice();
  if (picked !== "system") return picked;
  return media.matches ? "dark" : "light";
}

function apply() {
  document.documentElement.dataset.theme = current();
  for (const listener of listeners) listener(current());
}

/** Run ``listener(theme)`` whenever the effective theme changes. */
export function onChange(listener) {
  listeners.push(listener);
}

/** Follow the system (``"system"``) or force ``"light"`` / ``"dark"``. */
export function choose(value) {
  if (value === "light" || value === "dark") localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
  apply();
}

media.addEventListener("change", () => { if (choice() === "system") apply(); });
apply();
