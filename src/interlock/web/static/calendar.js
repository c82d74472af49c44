// The release calendar: scheduled releases and freezes by month or week, and the
// iCalendar feed to subscribe to.

import { api, query } from "./api.js";
import { code, h, loading, swap } from "./dom.js";

const DAY = 86400000;
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

function iso(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export async function calendar(ctx) {
  ctx.title("Calendar");
  ctx.heading("Release calendar");
  const view = ctx.query.get("view") === "week" ? "week" : "month";
  const anchor = ctx.query.get("date") ? new Date(`${ctx.query.get("date")}T00:00:00`) : new Date();
  const box = h("div", { id: "calendar" }, loading());
  ctx.main.append(box);
  const found = await api(`/calendar${query({ days: 400 })}`, { signal: ctx.signal });

  let first;
  let days;
  if (view === "week") {
    first = startOfDay(new Date(anchor.getTime() - ((anchor.getDay() + 6) % 7) * DAY));
    days = 7;
  } else {
    const monthStart = new Date(anchor.getFullYear(), anchor.getMonth(), 1);
    first = new Date(monthStart.getTime() - ((monthStart.getDay() + 6) % 7) * DAY);
    const monthEnd = new Date(anchor.getFullYear(), anchor.getMonth() + 1, 0);
    days = Math.ceil((monthEnd - first) / DAY + 1 + ((7 - monthEnd.getDay()) % 7));
    days = Math.ceil(days / 7) * 7;
  }
  const shift = (n) => {
    const d = view === "week" ? new Date(anchor.getTime() + n * 7 * DAY) : new Date(anchor.getFullYear(), anchor.getMonth() + n, 1);
    return `/ui/calendar${query({ view, date: iso(d) })}`;
  };
  const title =
    view === "week"
      ? `Week of ${first.toLocaleDateString(undefined, { day: "numeric", month: "long", year: "numeric" })}`
      : anchor.toLocaleDateString(undefined, { month: "long", year: "numeric" });

  const cells = [];
  for (let i = 0; i < days; i += 1) {
    const day = new Date(first.getFullYear(), first.getMonth(), first.getDate() + i);
    const next = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1);
    const releases = found.releases.filter((r) => {
      const at = new Date(r.scheduled_at);
      return at >= day && at < next;
    });
    const freezes = found.freezes.filter((f) => new Date(f.start) < next && new Date(f.end) > day);
    const outside = view === "month" && day.getMonth() !== anchor.getMonth();
    cells.push(
      h(
        "td",
        { class: ["day", outside ? "outside" : null, freezes.length ? "frozen" : null], "data-day": iso(day) },
        h("div", { class: "date" }, h("time", { datetime: iso(day) }, String(day.getDate()))),
        freezes.map((f) => h("div", { class: "freeze" }, `Freeze: ${f.reason}`, f.environments.length ? ` (${f.environments.join(", ")})` : "")),
        (found.windows || []).flatMap((w) =>
          w.allow
            .filter((a) => a.days.includes(WEEKDAYS[day.getDay()]))
            .map((a) => h("div", { class: "window" }, `${w.environment} open ${a.from}–${a.to}`)),
        ),
        releases.map((r) =>
          h(
            "div",
            { class: "scheduled" },
            h("a", { href: `/ui/releases/${r.id}` }, `#${r.id} `, new Date(r.scheduled_at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })),
            " ",
            r.items.map((i) => `${i.service}@${i.version}`).join(", "),
          ),
        ),
      ),
    );
  }
  const weeks = [];
  for (let i = 0; i < cells.length; i += 7) weeks.push(h("tr", {}, cells.slice(i, i + 7)));
  const names = [];
  for (let i = 0; i < 7; i += 1) names.push(new Date(first.getTime() + i * DAY).toLocaleDateString(undefined, { weekday: "short" }));

  swap(box, [
    h(
      "nav",
      { class: "pager", "aria-label": "Calendar" },
      h("a", { href: shift(-1) }, view === "week" ? "← Previous week" : "← Previous month"),
      h("strong", { id: "calendar-title" }, title),
      h("a", { href: shift(1) }, view === "week" ? "Next week →" : "Next month →"),
      h("a", { href: `/ui/calendar${query({ view: view === "week" ? "month" : "week", date: iso(anchor) })}` }, view === "week" ? "Month view" : "Week view"),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h("table", { class: ["calendar", `calendar-${view}`], "aria-labelledby": "calendar-title" }, h("thead", {}, h("tr", {}, names.map((n) => h("th", { scope: "col" }, n)))), h("tbody", {}, weeks)),
    ),
    found.problems.length ? h("ul", { class: "problems" }, found.problems.map((p) => h("li", {}, p))) : null,
    h(
      "section",
      { "aria-labelledby": "windows-title" },
      h("h2", { id: "windows-title" }, "Deploy windows"),
      (found.windows || []).length
        ? h(
            "ul",
            { id: "windows" },
            found.windows.map((w) =>
              h(
                "li",
                { "data-window": w.environment },
                h("strong", {}, w.environment),
                ": ",
                w.allow.length ? w.allow.map((a, i) => [i ? "; " : "", `${a.days.join(", ")} ${a.from}–${a.to}`]) : "any time outside freezes",
                ` (${w.timezone})`,
              ),
            ),
          )
        : h("p", {}, "No environment has a window gate: deploys may start any time."),
      h("p", { class: "small muted" }, "Each window is in its own time zone; the days above are in yours."),
    ),
    h(
      "p",
      { class: "small" },
      "Subscribe in a calendar application: ",
      h("a", { href: found.feed, id: "ical-feed" }, "iCalendar feed"),
      " (it needs a token: ",
      code(`${location.origin}${found.feed}?token=…`),
      ", best a read-only user's).",
    ),
  ]);
}
