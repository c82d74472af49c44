// Interlock web UI: routing, the page frame, signing in and out.
//
// Pages live at /ui/... (history routing; the server answers every /ui/ path
// with this app). Each page gets an AbortSignal that fires when the reader
// leaves it, which ends its polling and its pending calls.

import { api, everyItem, isAbort, onUnauthorized, query, resumeSso, session, signInOptions, signOut } from "./api.js";
import { add, code, errorBox, h } from "./dom.js";
import * as calendar from "./calendar.js";
import * as create from "./create.js";
import * as metrics from "./metrics.js";
import * as ops from "./ops.js";
import * as places from "./places.js";
import * as releases from "./releases.js";
import * as runbooks from "./runbooks.js";
import * as views from "./views.js";

const MESSAGE = "interlock.signin-message";

const NAV = [
  ["/ui/releases", "Releases"],
  ["/ui/approvals", "Waiting on me"],
  ["/ui/status", "Status"],
  ["/ui/incidents", "Incidents"],
  ["/ui/environments", "Environments"],
  ["/ui/runbooks", "Runbooks"],
  ["/ui/calendar", "Calendar"],
  ["/ui/metrics", "Metrics"],
  ["/ui/audit", "Audit"],
  ["/ui/overrides", "Overrides"],
];

const ROUTES = [
  { path: /^\/ui\/signin$/, page: signIn, open: true },
  { path: /^\/ui\/releases$/, page: releases.list },
  { path: /^\/ui\/releases\/new$/, page: create.create },
  { path: /^\/ui\/environments$/, page: places.environments },
  { path: /^\/ui\/environments\/([^/]{1,200})$/, page: places.environment },
  { path: /^\/ui\/services\/([^/]{1,200})$/, page: places.service },
  { path: /^\/ui\/runbooks$/, page: runbooks.list },
  { path: /^\/ui\/runbook-runs\/(\d{1,18})$/, page: runbooks.run },
  { path: /^\/ui\/calendar$/, page: calendar.calendar },
  { path: /^\/ui\/metrics$/, page: metrics.metrics },
  { path: /^\/ui\/overrides$/, page: ops.overrides },
  { path: /^\/ui\/releases\/(\d{1,18})$/, page: releases.detail },
  { path: /^\/ui\/steps\/(\d{1,18})\/logs$/, page: releases.log },
  { path: /^\/ui\/status$/, page: views.status },
  { path: /^\/ui\/approvals$/, page: views.approvals },
  { path: /^\/ui\/audit$/, page: views.audit },
  { path: /^\/ui\/incidents$/, page: ops.incidents },
];

let current = null;

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

/** Only paths of this app may be a `next` after signing in (no open redirect). */
function safeNext(value) {
  return typeof value === "string" && /^\/ui\/(?!\/)/.test(value) && !value.startsWith("/ui/signin")
    ? value
    : "/ui/releases";
}

function here() {
  return location.pathname + location.search;
}

onUnauthorized((detail) => {
  session.signOut();
  if (location.pathname.startsWith("/ui/signin")) return; // another call got there first
  sessionStorage.setItem(MESSAGE, `You were signed out: ${detail}`);
  navigate(`/ui/signin${query({ next: here() })}`, { replace: true });
});

function frame(active) {
  const user = session.user();
  const header = document.getElementById("top");
  const nav = h(
    "nav",
    { "aria-label": "Main" },
    h(
      "ul",
      {},
      NAV.map(([href, text]) =>
        h(
          "li",
          {},
          h(
            "a",
            { href, "aria-current": active && active.startsWith(href) ? "page" : null },
            text,
            href === "/ui/approvals" ? h("span", { id: "pending-count", class: "count", hidden: true }) : null,
          ),
        ),
      ),
    ),
  );
  const who = user
    ? h(
        "div",
        { class: "who" },
        h("span", {}, "Signed in as ", h("strong", { id: "signed-in-as" }, user.name)),
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: async () => {
              await signOut();
              sessionStorage.setItem(MESSAGE, "You are signed out.");
              navigate("/ui/signin", { replace: true });
            },
          },
          "Sign out",
        ),
      )
    : null;
  header.replaceChildren();
  add(header, [h("a", { class: "brand", href: "/ui/releases" }, "Interlock"), user ? nav : null, who]);
}

async function pendingCount(signal) {
  try {
    const found = await everyItem("/approvals/pending", { limit: 500 }, { signal });
    const badge = document.getElementById("pending-count");
    if (!badge) return;
    badge.textContent = String(found.length);
    badge.hidden = found.length === 0;
    badge.setAttribute("aria-label", `${found.length} waiting`);
  } catch {
    // the badge is a courtesy; the page itself reports errors
  }
}

function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

async function render() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const main = document.getElementById("main");
  if (path === "/ui" || path === "/") {
    navigate("/ui/releases", { replace: true });
    return;
  }
  const route = ROUTES.find((r) => r.path.test(path));
  if (route && !route.open && !session.signedIn()) {
    navigate(`/ui/signin${query({ next: here() })}`, { replace: true });
    return;
  }
  frame(path);
  main.replaceChildren();
  const params = route ? path.match(route.path).slice(1) : [];
  const ctx = {
    main,
    params,
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    navigate,
    announce,
    heading(text) {
      const el = h("h1", { tabindex: "-1" }, text);
      main.append(el);
      return el;
    },
    title(text) {
      document.title = `${text} · Interlock`;
    },
  };
  if (session.signedIn()) pendingCount(controller.signal);
  const page = route ? route.page : notFound;
  const done = page(ctx);
  // Move focus to the new page (keyboard and screen-reader users start there).
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) target.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  try {
    await done;
  } catch (error) {
    if (isAbort(error) || controller.signal.aborted) return;
    for (const waiting of main.querySelectorAll(".loading")) waiting.remove();
    main.append(errorBox(error));
  }
}

function notFound(ctx) {
  ctx.title("Not found");
  ctx.heading("Page not found");
  add(ctx.main, [
    h("p", {}, "There is no page at ", code(location.pathname), "."),
    h("p", {}, h("a", { href: "/ui/releases" }, "Go to the releases")),
  ]);
}

async function signIn(ctx) {
  ctx.title("Sign in");
  const next = safeNext(ctx.query.get("next"));
  const message = sessionStorage.getItem(MESSAGE);
  sessionStorage.removeItem(MESSAGE);
  const heading = ctx.heading("Sign in to Interlock");
  heading.classList.add("signin-title");
  const token = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "data-autofocus": true,
    "aria-describedby": "token-help",
  });
  const result = h("div", { id: "signin-result" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        result.replaceChildren();
        const secret = token.value.trim();
        if (!secret) {
          result.append(errorBox("Paste your API token first."));
          token.focus();
          return;
        }
        button.disabled = true;
        try {
          const me = await api("/users/me", { token: secret, signal: ctx.signal });
          session.signIn(secret, me);
          navigate(next, { replace: true });
        } catch (error) {
          if (isAbort(error)) return;
          result.append(errorBox(error, "Sign-in failed"));
          token.select();
          token.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    message
      ? h("div", { class: ["alert", message.startsWith("You are") ? "alert-ok" : "alert-error"], role: "alert" }, message)
      : null,
    h("label", { for: "token" }, "API token"),
    token,
    h(
      "div",
      { id: "token-help", class: "hint" },
      h("p", {}, "Interlock tokens start with ", code("ilk_"), ". To get one:"),
      h(
        "ul",
        {},
        h("li", {}, "make one for yourself with the CLI you already use: ", code("interlock token create")),
        h("li", {}, "or ask an administrator to run ", code("interlock token create --user YOUR_NAME"), "."),
      ),
      h(
        "p",
        {},
        "The token stays in this browser tab only (sessionStorage): it is forgotten when you sign out or close the tab.",
      ),
    ),
    button,
    result,
  );
  ctx.main.append(form);
  const options = await signInOptions();
  if (options.sso && !ctx.signal.aborted) {
    // A full page load to the provider and back (the /auth/ links are not the app's).
    const sso = h(
      "p",
      { class: "signin-sso" },
      h(
        "a",
        { class: "button primary", id: "sso-signin", href: `${options.sso.login_url}${query({ next })}` },
        `Sign in with ${options.sso.label}`,
      ),
    );
    form.before(sso, h("p", { class: "hint" }, "Or sign in with an API token:"));
  }
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/")) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", render);
resumeSso().finally(render);
