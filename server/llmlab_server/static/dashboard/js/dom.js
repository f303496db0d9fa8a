// Small DOM helpers. Text from data goes through textContent only (never innerHTML).

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function empty(node, message) {
  clear(node).appendChild(el("div", "empty", message));
}

/** Grey placeholder blocks while a panel loads (``lines`` bars, or one block for a chart). */
export function skeleton(node, lines = 0) {
  clear(node);
  node.setAttribute("aria-busy", "true");
  if (!lines) {
    node.appendChild(el("div", "skeleton block"));
    return;
  }
  for (let i = 0; i < lines; i += 1) node.appendChild(el("div", "skeleton line"));
}

export function loaded(node) {
  node.removeAttribute("aria-busy");
}

/** A failed panel: what went wrong and a Retry button that runs ``retry`` again. */
export function failure(node, err, retry) {
  clear(node);
  loaded(node);
  const box = node.appendChild(el("div", "failed"));
  box.setAttribute("role", "alert");
  box.appendChild(el("span", null, `Could not load: ${err.message}`));
  if (retry) {
    const button = box.appendChild(el("button", "secondary retry", "Retry"));
    button.type = "button";
    button.addEventListener("click", retry);
  }
}

/** A link that navigates inside the page (pushState) but still works as a normal link. */
export function link(text, href, navigate, className) {
  const a = el("a", className, text);
  a.href = href;
  a.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  });
  return a;
}
