// The sign-in page's other panels: create an account, and reset a forgotten password with
// the token the server mails. Errors the server pins on a field (the envelope's ``param``)
// are shown under that field; the rest under the form. The reset request's answer is the
// same for every address (the server's is too), so the page never tells if an account exists.

import * as api from "./api.js";
import { $ } from "./dom.js";

const FIELDS = { signup: ["name", "email", "password"], reset: ["email", "token", "password"] };
const PREFIX = { signup: "su", reset: "rs" };

/** Show one panel of the sign-in page ("signin", "signup" or "reset") and focus its first field. */
export function showPanel(name) {
  for (const node of document.querySelectorAll("#login-view [data-panel]")) {
    node.hidden = node.dataset.panel !== name;
  }
  const first = { signin: "email", signup: "su-email", reset: "rs-email" }[name];
  const typed = $("email").value;
  if (name !== "signin" && typed && !$(first).value) $(first).value = typed;
  $(first).focus();
}

function clearErrors(form) {
  for (const field of FIELDS[form]) {
    const input = $(`${PREFIX[form]}-${field}`);
    input.removeAttribute("aria-invalid");
    $(`${PREFIX[form]}-${field}-error`).textContent = "";
  }
  $(`${PREFIX[form]}-error`).textContent = "";
}

/** ``err`` under its field when the server named one of ``form``'s fields, else under the form. */
function showError(form, err) {
  const field = err.param && FIELDS[form].includes(err.param) ? err.param : null;
  if (!field) {
    $(`${PREFIX[form]}-error`).textContent = err.message;
    return;
  }
  const input = $(`${PREFIX[form]}-${field}`);
  input.setAttribute("aria-invalid", "true");
  // "password: too short" beside the Password field reads better without its prefix.
  const message = err.message.startsWith(`${field}: `) ? err.message.slice(field.length + 2) : err.message;
  $(`${PREFIX[form]}-${field}-error`).textContent = message;
  input.focus();
}

async function working(button, action) {
  button.disabled = true;
  try {
    await action();
  } finally {
    button.disabled = false;
  }
}

async function signup(event, signedIn) {
  event.preventDefault();
  clearErrors("signup");
  await working($("su-submit"), async () => {
    try {
      await api.signup($("su-email").value.trim(), $("su-password").value, $("su-name").value.trim());
    } catch (err) {
      showError("signup", err);
      return;
    }
    $("su-password").value = "";
    showPanel("signin");
    await enter(signedIn);
  });
}

async function requestReset(event) {
  event.preventDefault();
  clearErrors("reset");
  $("rs-sent").textContent = "";
  await working($("rs-request"), async () => {
    try {
      await api.requestReset($("rs-email").value.trim());
    } catch (err) {
      showError("reset", err);  // a malformed address or a throttle: never "no such account"
      return;
    }
    $("rs-sent").textContent = "If this address has a verified llmlab account, a reset token is "
      + "on its way (valid 1 hour). Paste it below with your new password.";
    $("rs-token").focus();
  });
}

async function confirmReset(event, signedIn) {
  event.preventDefault();
  clearErrors("reset");
  const email = $("rs-email").value.trim();
  if (!email) {
    showError("reset", { param: "email", message: "Enter your email: you are signed in with it afterwards." });
    return;
  }
  await working($("rs-submit"), async () => {
    try {
      await api.confirmReset($("rs-token").value.trim(), $("rs-password").value);
    } catch (err) {
      showError("reset", err);
      return;
    }
    const password = $("rs-password").value;
    $("rs-password").value = "";
    $("rs-token").value = "";
    $("rs-sent").textContent = "";
    showPanel("signin");
    try {
      await api.login(email, password);
    } catch (_) {
      // A token of another address than the one typed: the new password is set, sign in by hand.
      $("email").value = email;
      $("login-error").textContent = "Your password is set: sign in with it.";
      $("password").focus();
      return;
    }
    await enter(signedIn);
  });
}

async function enter(signedIn) {
  try {
    await signedIn();
  } catch (err) {
    if (err.status !== 401) $("login-error").textContent = err.message;
  }
}

/** Wire the panels; ``signedIn`` opens the app once a session is stored (dashboard.js's start). */
export function wire(signedIn) {
  for (const button of document.querySelectorAll("#login-view [data-show]")) {
    button.addEventListener("click", () => showPanel(button.dataset.show));
  }
  $("signup-form").addEventListener("submit", (e) => signup(e, signedIn));
  $("rs-request-form").addEventListener("submit", requestReset);
  $("rs-confirm-form").addEventListener("submit", (e) => confirmReset(e, signedIn));
}
