// Small DOM helpers: elements are built with textContent, never from HTML strings, so no document text or name can
// inject markup into the page.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let toastTimer = null;

// A message the user must see (a failed call, a refused key), for a few seconds.
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

// Where a passage comes from, as a citation: "title, p. 2-3, § section".
export function whereOf(hit) {
  const parts = [];
  if (hit.page) parts.push(hit.page_end && hit.page_end !== hit.page ? `pp. ${hit.page}–${hit.page_end}` : `p. ${hit.page}`);
  if (hit.section) parts.push(`§ ${hit.section}`);
  return parts.join(", ");
}

export function shorten(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
