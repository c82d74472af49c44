// The one way a page keeps itself current.
//
// A page holds one long-poll, `GET /api/v1/changes?since=N&wait=25`, answered as
// soon as anything changes on the server (the audit head moves with every state
// change). What the page shows subscribes to that pulse (`onChange`) and loads
// again when it beats; nothing polls on its own timer. The loop pauses while the
// tab is hidden and ends when the reader leaves the page, so a page open for
// hours holds at most one request to the server at a time.

import { api, backoff, poll, query } from "./api.js";
import { errorBox, h, swap } from "./dom.js";

const WAIT = 25; // seconds the server holds a long-poll before answering "no change"
const pulses = new WeakMap(); // a page's AbortSignal -> its pulse

function pulseOf(signal) {
  let pulse = pulses.get(signal);
  if (pulse) return pulse;
  const listeners = new Set();
  let seq = null;
  pulse = {
    listeners,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  pulses.set(signal, pulse);
  const turn = async () => {
    const found = await api(`/changes${query({ since: seq, wait: seq === null ? 0 : WAIT })}`, { signal });
    // The first answer is the baseline. A change may have landed between a page's
    // first load and that baseline, so the baseline counts as a beat too: each page
    // loads once more (drawn again only if something differs) and misses nothing.
    const moved = seq === null || found.seq !== seq;
    seq = found.seq;
    if (moved) for (const listener of [...listeners]) listener(seq);
    return 0;
  };
  poll(signal, turn, { failed: (_error, failures) => backoff(failures), whenVisible: true }).catch(() => {});
  return pulse;
}

/**
 * Call `reload()` each time something changes on the server, until the page is
 * left; one reload at a time (a change during one runs it once more after).
 * Resolves when the page is left.
 */
export function onChange(signal, reload) {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await reload();
        } while (again && !signal.aborted);
      } catch {
        // the reload reports its own trouble
      } finally {
        running = false;
      }
    };
    const stop = pulseOf(signal).subscribe(run);
    signal.addEventListener(
      "abort",
      () => {
        stop();
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Load and draw, then again whenever something changes on the server (while the
 * page is open and `live` is true). With `replace` (the default) what `draw`
 * returns replaces the container's children; without, `draw` puts things in place.
 */
export async function follow(ctx, container, load, draw, live = true, { replace = true } = {}) {
  const problem = h("div", { class: "refresh-error" });
  container.before(problem);
  let last = "";
  let refused = false;
  const turn = async () => {
    try {
      const found = await load();
      problem.replaceChildren();
      const text = JSON.stringify(found);
      if (text !== last) {
        last = text;
        const drawn = draw(found);
        if (replace) swap(container, drawn);
      }
    } catch (error) {
      if (ctx.signal.aborted || error.name === "AbortError") return;
      if (!last) {
        // Nothing shown yet: say why in its place; a refusal will not change by retrying.
        swap(container, errorBox(error));
        refused = error.status === 403 || error.status === 404;
      } else {
        problem.replaceChildren(errorBox(error, "Could not refresh"));
      }
    }
  };
  await turn();
  if (!live || refused) return;
  await onChange(ctx.signal, turn);
}
