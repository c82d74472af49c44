// Delivery metrics as charts by week: inline SVG drawn here (no library, no CDN), with
// the DORA band, the sample size and the definition of each; filters; the manual steps
// to automate first.

import { api, query } from "./api.js";
import { duration, empty, h, loading, swap, table } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function shown(value, metric) {
  if (value === null || value === undefined) return "no data";
  if (metric.kind === "duration") return duration(value) || "0s";
  if (metric.kind === "ratio") return `${(value * 100).toFixed(1)}%`;
  if (metric.kind === "rate") return `${value.toFixed(2)} per ${metric.unit || "week"}`;
  return String(value);
}

/** A bar chart of one metric by week: each bar's value and sample size in its title. */
export function chart(metric, weeks) {
  const width = 560;
  const height = 160;
  const pad = 28;
  const values = weeks.map((w) => w.metric?.value ?? null);
  const top = Math.max(...values.filter((v) => v !== null), 0) || 1;
  const bar = (width - pad * 2) / Math.max(1, weeks.length);
  const id = `chart-${metric.key}`;
  return s(
    "svg",
    { viewBox: `0 0 ${width} ${height + 24}`, role: "img", "aria-labelledby": `${id}-title`, class: "chart", id },
    s("title", { id: `${id}-title` }, `${metric.title} by week: ${weeks.map((w) => `${w.label} ${shown(w.metric?.value ?? null, metric)} (n=${w.metric?.n ?? 0})`).join("; ")}`),
    s("line", { x1: pad, y1: height, x2: width - pad, y2: height, class: "axis" }),
    weeks.map((w, i) => {
      const v = w.metric?.value ?? null;
      const x = pad + i * bar + 2;
      const hgt = v === null ? 0 : Math.max(1, ((height - 12) * v) / top);
      return s(
        "g",
        {},
        v === null
          ? s("text", { x: x + bar / 2 - 2, y: height - 4, class: "nodata", "text-anchor": "middle" }, "–")
          : s("rect", { x, y: height - hgt, width: Math.max(1, bar - 4), height: hgt, class: `bar band-${String(w.metric.band || "none").toLowerCase()}` }),
        i % 2 === 0 ? s("text", { x: x + bar / 2 - 2, y: height + 16, "text-anchor": "middle", class: "tick" }, w.label) : null,
      );
    }),
    s("text", { x: pad, y: 10, class: "tick" }, shown(top, metric)),
  );
}

export async function metrics(ctx) {
  ctx.title("Metrics");
  ctx.heading("Delivery metrics");
  const q = ctx.query;
  const weeksWanted = Math.min(26, Math.max(4, Number(q.get("weeks")) || 12));
  const filters = { service: q.get("service") || "", team: q.get("team") || "", env: q.get("env") || "" };
  const fields = [
    ["service", "Service"],
    ["team", "Team"],
    ["env", "Environment"],
  ].map(([name, label]) => h("div", { class: "field" }, h("label", { for: `metrics-${name}` }, label), h("input", { id: `metrics-${name}`, name, type: "text", value: filters[name], spellcheck: "false" })));
  const weeksField = h("input", { id: "metrics-weeks", name: "weeks", type: "number", min: "4", max: "26", value: String(weeksWanted) });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter metrics",
      onsubmit: (event) => {
        event.preventDefault();
        const found = Object.fromEntries([...form.querySelectorAll("input")].map((el) => [el.name, el.value.trim()]));
        ctx.navigate(`/ui/metrics${query(found)}`);
      },
    },
    fields,
    h("div", { class: "field" }, h("label", { for: "metrics-weeks" }, "Weeks"), weeksField),
    h("button", { type: "submit" }, "Show"),
  );
  const box = h("div", { id: "metrics" }, loading("Measuring each week…"));
  ctx.main.append(form, box);

  // One call for every week (the server measures each week as /metrics would).
  const base = { service: filters.service, team: filters.team, env: filters.env };
  const series = await api(`/metrics/series${query({ ...base, weeks: weeksWanted, min_events: 1 })}`, { signal: ctx.signal });
  const spans = series.weeks.map((w) => {
    const since = new Date(w.since);
    return { since, label: `${since.getUTCMonth() + 1}/${since.getUTCDate()}` };
  });
  const end = series.weeks[series.weeks.length - 1].until;
  const whole = await api(`/metrics${query({ ...base, since: series.weeks[0].since, until: end })}`, { signal: ctx.signal });
  const byKey = new Map(series.metrics.map((m) => [m.key, m.weeks]));
  const manual = await api(`/metrics/manual-steps${query({ ...base, since: spans[0].since.toISOString(), limit: 10 })}`, { signal: ctx.signal }).catch(() => null);

  swap(box, [
    h("p", { class: "lead" }, `${whole.scope?.environments ? `Measured in ${[whole.scope.environments].flat().join(", ")}` : "Measured"}, the last ${weeksWanted} weeks. Bars are weekly values; the figure beside each title is the whole period.`),
    whole.notes.length ? h("ul", { class: "notes" }, whole.notes.map((n) => h("li", {}, n))) : null,
    whole.metrics.map((m) =>
      h(
        "article",
        { class: "metric", "data-metric": m.key },
        h("h2", {}, m.title, ": ", h("span", { class: "value" }, m.display)),
        h("p", { class: "band" }, m.band ? `Band: ${m.band}` : m.band_note || "no band", ` · n=${m.n}`),
        chart(m, spans.map((span, i) => ({ label: span.label, metric: (byKey.get(m.key) || [])[i] }))),
        h("details", {}, h("summary", {}, "Definition"), h("p", {}, m.definition)),
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "manual-title" },
      h("h2", { id: "manual-title" }, "Manual steps to automate first"),
      manual && manual.steps && manual.steps.length
        ? table(
            "Manual steps, most costly first",
            ["Step", "Runbook", "Runs", "Median sign-off", "Total sign-off"],
            manual.steps.map((st) =>
              h("tr", {}, h("td", { class: "mono" }, st.step), h("td", {}, st.runbook || "—"), h("td", {}, String(st.runs)), h("td", {}, st.median_signoff_display), h("td", {}, st.total_signoff_display)),
            ),
          )
        : empty("No manual steps ran in this period."),
      manual ? h("p", { class: "small muted" }, manual.definition) : null,
    ),
  ]);
}
