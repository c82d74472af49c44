// Calls to /api/v1 with the signed-in token, and the session that holds it.
//
// The token lives in sessionStorage: it is gone when the tab closes, other
// tabs and sites never see it, and it is sent only as an Authorization header
// (never a cookie, so no request can carry it without this code asking).

const TOKEN = "interlock.token";
const USER = "interlock.user";

export const session = {
  token() {
    return sessionStorage.getItem(TOKEN);
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
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

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
  const secret = token ?? session.token();
  const headers = { Accept: "application/json" };
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
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
