// Building blocks of the management pages: tables, buttons, a two-step confirmation, the
// "shown once" secret box and form errors. Text from data goes through textContent only.

import { send } from "./api.js";
import { $, clear, el, failure, loaded } from "./dom.js";
import { timestamp } from "./format.js";

/** A button (``type="button"``) running ``onClick``; it is disabled while the click's promise runs. */
export function button(text, onClick, className = "secondary", label = null) {
  const node = el("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try {
      await onClick(node);
    } finally {
      node.disabled = false;
    }
  });
  return node;
}

/**
 * A destructive button that asks once more in place: "Revoke" becomes "Confirm revoke" for a
 * few seconds (no window.confirm: a modal a screen reader and a test both handle poorly).
 */
export function confirmButton(text, onConfirm, label = null) {
  let armed = null;
  const node = button(text, async () => {
    if (!armed) {
      node.textContent = `Confirm ${text.toLowerCase()}`;
      node.classList.add("danger");
      armed = setTimeout(() => {
        armed = null;
        node.textContent = text;
        node.classList.remove("danger");
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    await onConfirm();
  }, "secondary", label);
  return node;
}

/** Fill ``table`` with ``headers`` and ``rows`` (arrays of text or nodes); ``empty`` when none. */
export function fillTable(table, headers, rows, emptyNode) {
  clear(table);
  loaded(table);
  if (!rows.length) {
    const caption = table.appendChild(el("caption", "empty"));
    if (typeof emptyNode === "string") caption.textContent = emptyNode;
    else caption.appendChild(emptyNode);
    return;
  }
  const head = table.appendChild(el("thead")).appendChild(el("tr"));
  for (const text of headers) head.appendChild(el("th", null, text)).scope = "col";
  const body = table.appendChild(el("tbody"));
  for (const cells of rows) {
    const tr = body.appendChild(el("tr"));
    if (cells.id !== undefined) tr.dataset.id = String(cells.id);
    for (const cell of cells) {
      const td = tr.appendChild(el("td"));
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell === null || cell === undefined ? "—" : String(cell);
    }
  }
}

/** Rows of grey placeholders while a table loads. */
export function tableLoading(table) {
  clear(table);
  table.setAttribute("aria-busy", "true");
  for (let i = 0; i < 3; i += 1) {
    table.appendChild(el("tr")).appendChild(el("td")).appendChild(el("div", "skeleton line"));
  }
}

/** A table whose request failed: the reason and a Retry button. */
export function tableFailed(table, err, retry) {
  clear(table);
  failure(table.appendChild(el("tr")).appendChild(el("td")), err, retry);
}

/** Cells of several nodes (buttons side by side). */
export function group(...nodes) {
  const span = el("span", "actions");
  for (const node of nodes) if (node) span.appendChild(node);
  return span;
}

/** "2026-12-06 07:21" (UTC), or "never". */
export function when(value) {
  return value ? timestamp(value).slice(0, 16) : "never";
}

/** Show a secret once in ``box`` (its ``code`` element) and move the focus there. */
export function showSecret(box, secret) {
  box.hidden = false;
  const code = box.querySelector("code");
  code.textContent = secret;
  code.tabIndex = -1;
  code.focus();
}

/** Hide a secret box and forget its text (it is never shown again). */
export function forgetSecret(box) {
  box.hidden = true;
  box.querySelector("code").textContent = "";
}

/** Run a form's submit: errors go to ``errorId``, the submit button is disabled meanwhile. */
export function onSubmit(form, errorId, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $(errorId);
    error.textContent = "";
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await action();
    } catch (err) {
      if (err.status !== 401) error.textContent = describe(err);
    } finally {
      submit.disabled = false;
    }
  });
}

/** A readable reason for a failed request (a forbidden action says who may do it). */
export function describe(err) {
  if (err.status === 403) return `Not allowed with your role: ${err.message}`;
  return err.message;
}

/** The caller may manage (admin or owner) the project ``project`` (from GET /api/projects). */
export function canManage(project) {
  return Boolean(project) && (project.role === "owner" || project.role === "admin");
}

/**
 * A project field shown as text; for owners and admins, a button that turns it into a
 * one-field form saving ``{[field]: value}`` with PATCH /api/projects/<id>, then reloads.
 * ``opts``: {field, value, className, buttonText, buttonLabel, inputLabel, maxLength, list}.
 */
export function projectFieldCell(project, context, reload, opts) {
  const cell = el("span", opts.className);
  const shown = cell.appendChild(el("span", null, opts.value));
  if (!canManage(project)) return cell;
  cell.appendChild(button(opts.buttonText, () => {
    const form = el("form", "inline-form");
    const input = form.appendChild(el("input"));
    input.value = opts.value;
    input.required = true;
    input.maxLength = opts.maxLength;
    if (opts.list) input.setAttribute("list", opts.list);
    input.setAttribute("aria-label", opts.inputLabel);
    form.appendChild(el("button", null, "Save")).type = "submit";
    const error = form.appendChild(el("span", "error"));
    error.setAttribute("role", "alert");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await send("PATCH", `/api/projects/${project.id}`, { [opts.field]: input.value.trim() });
        await context.reloadProjects();
        await reload(context);
      } catch (err) {
        if (err.status !== 401) error.textContent = describe(err);
      }
    });
    cell.replaceChildren(form);
    input.focus();
  }, "secondary small-button", opts.buttonLabel));
  shown.after(" ");
  return cell;
}
