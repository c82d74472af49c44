// Building the page: every value from the API becomes a text node, never markup.
//
// `h(tag, props, ...children)` creates an element. Strings and numbers among the
// children are appended as text (Node.append makes text nodes), so a release
// reason such as `<img src=x onerror=...>` is shown literally. Event handlers
// are functions attached with addEventListener; `on*` attributes, `style` and
// `href`s that leave the app are refused, so no data can become code.

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "hidden", "open"]);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else if (/^on/i.test(key) || key === "style" || key === "srcdoc") {
      throw new Error(`refusing to set ${key} on <${tag}>`);
    } else {
      if (key === "href" && !/^(\/(?!\/)|#|\?)/.test(String(value))) {
        throw new Error(`refusing a link that leaves the app: ${value}`);
      }
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  add(el, children);
  return el;
}

export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Set an element's text only when it changes (live regions re-announce any write). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// ---- formatting -----------------------------------------------------------

const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function parseTime(iso) {
  if (!iso) return null;
  const found = new Date(iso);
  return Number.isNaN(found.getTime()) ? null : found;
}

/** A <time> element: local date and time, the ISO value as its machine-readable form. */
export function when(iso, fallback = "—") {
  const found = parseTime(iso);
  if (!found) return h("span", { class: "muted" }, fallback);
  return h("time", { datetime: found.toISOString(), title: found.toISOString() }, DATE_TIME.format(found));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const total = Math.round(s);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (days) return `${days}d ${hours}h`;
  if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  return `${minutes}m ${String(secs).padStart(2, "0")}s`;
}

/** How long between two times; with no end, a counter that the ticker keeps current. */
export function took(startIso, endIso) {
  const start = parseTime(startIso);
  if (!start) return "";
  const end = parseTime(endIso);
  if (end) return duration((end - start) / 1000);
  return h("span", { class: "elapsed", "data-since": start.toISOString() }, duration((Date.now() - start) / 1000));
}

// One ticker for the whole page: every running counter advances each second.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-since]")) {
    const start = parseTime(el.getAttribute("data-since"));
    if (start) el.textContent = duration((Date.now() - start) / 1000);
  }
}, 1000);

export function stateBadge(state) {
  const name = String(state || "unknown");
  return h("span", { class: ["state", `state-${name.replace(/[^a-z_]/g, "")}`] }, name.replaceAll("_", " "));
}

export function items(list) {
  return (list || []).map((i) => `${i.service}@${i.version}`).join(", ");
}

export function shortDigest(digest) {
  if (!digest) return "";
  const [algo, hex] = String(digest).split(":");
  return hex ? `${algo}:${hex.slice(0, 12)}` : String(digest).slice(0, 19);
}

// ---- common blocks ----------------------------------------------------------

export function errorBox(error, prefix = "") {
  const detail = error && error.detail ? error.detail : String(error && error.message ? error.message : error);
  return h("div", { class: "alert alert-error", role: "alert" }, prefix ? `${prefix}: ${detail}` : detail);
}

export function empty(text, hint) {
  return h("div", { class: "empty" }, h("p", {}, text), hint ? h("p", { class: "muted" }, hint) : null);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

export function code(text) {
  return h("code", {}, text);
}

/** A table from column titles and rows of cells (strings or nodes). */
export function table(caption, columns, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows),
    ),
  );
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/**
 * Replace a container's children without losing the reader's place: the
 * element that had focus (a comment being typed, a link) gets it back, with
 * its text selection, when it is still there or has a twin with the same id,
 * data-key or href.
 */
export function swap(container, children) {
  const active = document.activeElement;
  const inside = active && active !== document.body && container.contains(active);
  let key = null;
  let selection = null;
  if (inside) {
    key = focusKey(active);
    try {
      if (typeof active.selectionStart === "number") selection = [active.selectionStart, active.selectionEnd];
    } catch {
      selection = null;
    }
  }
  container.replaceChildren();
  add(container, children);
  if (!inside) return;
  const target = active.isConnected ? active : key ? container.querySelector(key) : null;
  if (!target) return;
  target.focus({ preventScroll: true });
  if (selection && target === active) {
    try {
      target.setSelectionRange(selection[0], selection[1]);
    } catch {
      // not a text field
    }
  }
}

function focusKey(el) {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const key = el.getAttribute("data-key");
  if (key) return `[data-key="${CSS.escape(key)}"]`;
  const href = el.getAttribute("href");
  if (href) return `a[href="${CSS.escape(href)}"]`;
  return null;
}

/** A string usable in an id: letters, digits and dashes. */
export function slug(text) {
  return String(text)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
}
