// Calls to /api/v1 as the signed-in person, and the session that says who that is.
//
// Two ways in. An API token lives in sessionStorage: it is gone when the tab
// closes, other tabs and sites never see it, and it is sent only as an
// Authorization header. Single sign-on leaves an HttpOnly session cookie this
// code never sees; the browser sends it with same-origin calls, and changes
// carry the session's CSRF token in X-CSRF-Token (another site's page can make
// the browser send the cookie, never that header).

const TOKEN = "interlock.token";
const USER = "interlock.user";
const CSRF = "interlock.csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export const session = {
  token() {
    return sessionStorage.getItem(TOKEN);
  },
  /** The CSRF token of a single sign-on session (null when signed in with a token). */
  csrf() {
    return sessionStorage.getItem(CSRF);
  },
  signedIn() {
    return Boolean(this.token() || this.csrf());
  },
  user() {
    try {
      return JSON.parse(sessionStorage.getItem(USER) || "null");
    } catch {
      return null;
    }
  },
  signIn(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.removeItem(CSRF);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  signInSso(user, csrf) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.setItem(CSRF, csrf);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(CSRF);
    sessionStorage.removeItem(USER);
  },
};

async function authJson(path, { method = "GET", headers = {} } = {}) {
  const response = await fetch(path, {
    method,
    cache: "no-store",
    credentials: "same-origin",
    referrerPolicy: "no-referrer",
    headers: { Accept: "application/json", ...headers },
  });
  const text = await response.text();
  return { ok: response.ok, status: response.status, data: text ? JSON.parse(text) : null };
}

/**
 * Pick up a single sign-on session (this tab just came back from the provider,
 * or another tab signed in): who it is and its CSRF token. False when there is none.
 */
export async function resumeSso() {
  if (session.token()) return false;
  try {
    const found = await authJson("/auth/session");
    if (!found.ok) {
      if (session.csrf()) session.signOut(); // the session ended elsewhere
      return false;
    }
    const { csrf_token: csrf, ...user } = found.data;
    session.signInSso(user, csrf);
    return true;
  } catch {
    return false;
  }
}

/** How one may sign in here: `{token: true, sso: {label, login_url} | null}`. */
export async function signInOptions() {
  try {
    const found = await authJson("/auth/providers");
    return found.ok ? found.data : { token: true, sso: null };
  } catch {
    return { token: true, sso: null };
  }
}

/** Sign out: end the single sign-on session on the server too, then forget it here. */
export async function signOut() {
  const csrf = session.csrf();
  session.signOut();
  if (!csrf) return;
  try {
    await authJson("/auth/signout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
  } catch {
    // signed out here anyway; the server's session expires on its own
  }
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

let unauthorized = () => {};

/** What to do when the API says the token is no good (401): set by the app. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function isAbort(error) {
  return error && error.name === "AbortError";
}

/**
 * Call the API. Resolves to the decoded JSON body; rejects with an ApiError
 * whose `detail` is the API's own message (application/problem+json), or with
 * an AbortError when `signal` fires.
 */
export async function api(path, { method = "GET", body, signal, token } = {}) {
  const headers = { Accept: "application/json", ...who(method, token) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      // The session cookie of single sign-on goes along (same origin only); a token
      // call carries its Authorization header and the server reads that first.
      credentials: token === undefined ? "same-origin" : "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, "Cannot reach the Interlock server; check that it is running, then try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    let detail = data && typeof data.detail === "string" && data.detail ? data.detail : "";
    if (!detail) detail = `${response.status} ${response.statusText || "error"}`.trim();
    const error = new ApiError(response.status, detail, data);
    if (response.status === 401 && token === undefined) unauthorized(detail);
    throw error;
  }
  return data;
}

/**
 * The headers that say who calls: the token's Authorization header, or (signed in
 * through single sign-on, the cookie going along by itself) the CSRF token on a change.
 */
function who(method, token) {
  const secret = token ?? session.token();
  if (secret) return { Authorization: `Bearer ${secret}` };
  if (UNSAFE.has(method.toUpperCase()) && session.csrf()) return { "X-CSRF-Token": session.csrf() };
  return {};
}

/**
 * Fetch a file from the API as the signed-in person (token or single sign-on
 * cookie alike) and resolve to its Blob, to offer with `URL.createObjectURL`.
 * Rejects with an ApiError carrying the API's own message.
 */
export async function download(path, { method = "GET", signal } = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers: who(method),
      signal,
      cache: "no-store",
      credentials: "same-origin",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, "Cannot reach the Interlock server; check that it is running, then try again.");
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    const detail = data && typeof data.detail === "string" && data.detail ? data.detail : `${response.status} ${response.statusText || "error"}`.trim();
    if (response.status === 401) unauthorized(detail);
    throw new ApiError(response.status, detail, data);
  }
  return response.blob();
}

/** A query string from an object; arrays repeat the key; empty values are left out. */
export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of [value].flat()) {
      if (one === null || one === undefined || one === "") continue;
      out.append(key, String(one));
    }
  }
  const text = out.toString();
  return text ? `?${text}` : "";
}

/** Every item of a paged list (`{items, next_cursor}`), following the cursor to its end. */
export async function everyItem(path, params, { signal } = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(`${path}${query({ ...params, cursor })}`, { signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== null && cursor !== undefined);
  return items;
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new DOMException("aborted", "AbortError"));
      return;
    }
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(new DOMException("aborted", "AbortError"));
        },
        { once: true },
      );
    }
  });
}

/** Wait until the tab is visible again (a hidden tab holds no long-poll open). */
export function visible(signal) {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", done);
      resolve();
    };
    document.addEventListener("visibilitychange", done);
    signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")), { once: true });
  });
}

/** What a turn of `poll` returns to end it. */
export const STOP = Symbol("stop");

/** The wait after `failures` failed turns in a row: 2, 4, 8… seconds, at most 30. */
export function backoff(failures) {
  return Math.min(30, 2 ** failures) * 1000;
}

/**
 * The page's one polling loop: `turn(failures)` again and again until it returns
 * STOP or the page is left (`signal`). A turn returns how many ms to wait before the
 * next; a failed one goes to `failed(error, failures)`, which says the same (or
 * STOP). `wait` ms pass before the first turn; `whenVisible` waits for a hidden tab
 * to show again before each turn.
 */
export async function poll(signal, turn, { failed, wait = 0, whenVisible = false }) {
  let failures = 0;
  let next = wait;
  while (!signal.aborted) {
    if (next) await sleep(next, signal);
    if (whenVisible) await visible(signal);
    try {
      next = await turn(failures);
      failures = 0;
    } catch (error) {
      if (isAbort(error)) throw error;
      failures += 1;
      next = failed(error, failures);
    }
    if (next === STOP) return;
  }
}
