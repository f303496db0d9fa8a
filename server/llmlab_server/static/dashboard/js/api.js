// The JSON API with a bearer token kept in sessionStorage (never in a URL or a cookie).

export const KEYS = { access: "llmlab.access", refresh: "llmlab.refresh", email: "llmlab.email",
                      project: "llmlab.project" };

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error ? body.error.code : null;
    this.param = body && body.error ? body.error.param || null : null;  // the field at fault
  }
}

let refreshing = null;
let onSignedOut = () => {};

/** Called when the session cannot be renewed (the page shows the sign-in form). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export function storeSession(session) {
  sessionStorage.setItem(KEYS.access, session.access_token);
  sessionStorage.setItem(KEYS.refresh, session.refresh_token);
  if (session.user) sessionStorage.setItem(KEYS.email, session.user.email);
}

export function forgetSession() {
  for (const key of [KEYS.access, KEYS.refresh, KEYS.email]) sessionStorage.removeItem(key);
}

async function refreshTokens() {
  // One refresh at a time: the refresh token rotates, a second use would end the session.
  if (!refreshing) {
    refreshing = (async () => {
      const token = sessionStorage.getItem(KEYS.refresh);
      if (!token) return false;
      const response = await fetch("/api/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }), credentials: "omit",
      });
      if (!response.ok) return false;
      storeSession((await response.json()).data);
      return true;
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** GET ``path`` with ``params``; the envelope's ``data`` (or the Response when ``raw``). */
export async function request(path, params, raw) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return call(url, "GET", undefined, raw);
}

/** ``method`` (POST, PATCH, DELETE) ``path`` with a JSON ``body``; the envelope's ``data``. */
export async function send(method, path, body) {
  return call(new URL(path, window.location.origin), method, body, false);
}

async function call(url, method, body, raw) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    let response;
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEYS.access) || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await fetch(url, {
        method, headers, credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new ApiError(0, { error: { message: "the server did not answer" } });
    }
    if (response.status === 401 && attempt === 0 && await refreshTokens()) continue;
    if (response.status === 401) {
      onSignedOut("Your session has ended; sign in again.");
      throw new ApiError(401, null);
    }
    if (raw && response.ok) return response;
    let parsed = null;
    try { parsed = await response.json(); } catch (_) { parsed = null; }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed ? parsed.data : null;
  }
  throw new ApiError(401, null);
}

/** POST ``body`` to an unauthenticated ``/api/auth`` route; the envelope's ``data``. */
async function anonymous(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit",
      body: JSON.stringify(body),
    });
  } catch (_) {
    throw new ApiError(0, { error: { message: "the server did not answer" } });
  }
  const parsed = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed ? parsed.data : null;
}

export async function login(email, password) {
  storeSession(await anonymous("/api/auth/login", { email, password }));
}

/** Create an account (``name`` optional); the server signs it in at once. */
export async function signup(email, password, name) {
  const body = { email, password };
  if (name) body.name = name;
  storeSession(await anonymous("/api/auth/signup", body));
}

/** Ask for a reset token by mail: the server answers the same for any address. */
export async function requestReset(email) {
  await anonymous("/api/auth/password-reset", { email });
}

/** Set a new password with a mailed reset token (every session of the account ends). */
export async function confirmReset(token, password) {
  await anonymous("/api/auth/password-reset/confirm", { token, password });
}

export function logout() {
  const token = sessionStorage.getItem(KEYS.refresh);
  if (token) {
    fetch("/api/auth/logout", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json",
                 Authorization: `Bearer ${sessionStorage.getItem(KEYS.access) || ""}` },
      body: JSON.stringify({ refresh_token: token }),
    }).catch(() => {});
  }
  forgetSession();
}
