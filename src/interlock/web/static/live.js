// The one way a page keeps itself current: `follow` loads, draws, and loads again
// every `every` ms through api.js's single `poll` loop, one request at a time, paused
// while the tab is hidden and ended when the reader leaves the page. A page open for
// hours so holds at most one request to the server (the release page's long-poll is
// the same loop, answered as soon as the release moves).

import { poll, STOP } from "./api.js";
import { errorBox, h, swap } from "./dom.js";

/**
 * Load, draw, and redraw while the page is open and the answer changes. With
 * `replace` (the default) what `draw` returns replaces the container's children;
 * without, `draw` puts things in place itself.
 */
export async function follow(ctx, container, load, draw, every, { replace = true } = {}) {
  const problem = h("div", { class: "refresh-error" });
  container.before(problem);
  let last = "";
  const turn = async () => {
    const found = await load();
    problem.replaceChildren();
    const text = JSON.stringify(found);
    if (text !== last) {
      last = text;
      const drawn = draw(found);
      if (replace) swap(container, drawn);
    }
    return every || STOP;
  };
  const failed = (error) => {
    if (!last) {
      // Nothing shown yet: say why in its place; a refusal will not change by retrying.
      swap(container, errorBox(error));
      if (error.status === 403 || error.status === 404) return STOP;
    } else {
      problem.replaceChildren(errorBox(error, "Could not refresh"));
    }
    return every || STOP;
  };
  await poll(ctx.signal, turn, { failed, whenVisible: true });
}

