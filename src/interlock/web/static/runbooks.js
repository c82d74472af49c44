// Runbooks: start one, follow a run, sign its manual steps; each step's output shown.

import { api, query } from "./api.js";
import { abilities, can } from "./can.js";
import { empty, h, loading, stateBadge, swap, table, took, when } from "./dom.js";
import { actionForm, folded } from "./forms.js";
import { follow } from "./live.js";

export async function list(ctx) {
  ctx.title("Runbooks");
  ctx.heading("Runbooks");
  ctx.main.append(h("p", { class: "lead" }, "Procedures as code: automated steps run, manual steps wait for the person who signs them."));
  const [allowed, books, status] = await Promise.all([
    abilities(ctx.signal),
    api("/runbooks", { signal: ctx.signal }),
    api("/status", { signal: ctx.signal }),
  ]);
  const envs = status.environments.filter((environment) => can(allowed, "runbook.run", { environment }));
  const section = h("section", { "aria-labelledby": "books-title" }, h("h2", { id: "books-title" }, "Definitions"));
  ctx.main.append(section);
  if (!books.length) section.append(empty("No runbooks in interlock.yaml."));
  for (const book of books) {
    const params = Object.entries(book.params || {});
    section.append(
      h(
        "article",
        { class: "card", "data-runbook": book.name },
        h("h3", {}, book.name),
        book.description ? h("p", {}, book.description) : null,
        h("ol", {}, book.steps.map((s) => h("li", {}, s.name, s.manual ? h("span", { class: "muted" }, ` (manual, signed by ${s.signer})`) : null))),
        envs.length || can(allowed, "runbook.run", {})
          ? folded(
              `Start ${book.name}…`,
              actionForm({
                id: `start-${book.name}`,
                label: `Start runbook ${book.name}`,
                signal: ctx.signal,
                fields: [
                  { name: "environment", label: "Environment", type: "select", options: [["", "none"], ...envs.map((e) => [e, e])] },
                  ...params.map(([key, spec]) => ({ name: `param:${key}`, label: `${key}${spec.required ? "" : " (optional)"}`, required: Boolean(spec.required), value: spec.default ?? "", hint: spec.description || null })),
                  { name: "incident", label: "Attach to incident # (optional)", type: "number" },
                  { name: "reason", label: "Why run it?", type: "text" },
                ],
                button: "Start the run",
                submit: async (found) => {
                  const body = { params: {}, environment: found.environment || null, reason: found.reason || null, incident: found.incident ? Number(found.incident) : null };
                  for (const [key, value] of Object.entries(found)) if (key.startsWith("param:") && value) body.params[key.slice(6)] = value;
                  const run = await api(`/runbooks/${encodeURIComponent(book.name)}/runs`, { method: "POST", body, signal: ctx.signal });
                  ctx.navigate(`/ui/runbook-runs/${run.id}`);
                  return null;
                },
              }),
            )
          : null,
      ),
    );
  }
  const runs = h("div", { id: "runs" }, loading());
  ctx.main.append(h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Runs"), runs));
  await follow(
    ctx,
    runs,
    () => api(`/runbook-runs${query({ limit: 50 })}`, { signal: ctx.signal }),
    (page) =>
      page.items.length
        ? table(
            "Runbook runs, newest first",
            ["Run", "Runbook", "State", "Environment", "Started by", "At", "Incident"],
            page.items.map((r) =>
              h(
                "tr",
                { "data-run": r.id },
                h("td", {}, h("a", { href: `/ui/runbook-runs/${r.id}` }, `run ${r.id}`)),
                h("td", {}, r.runbook),
                h("td", {}, stateBadge(r.state)),
                h("td", {}, r.environment || "—"),
                h("td", {}, r.created_by),
                h("td", {}, when(r.created_at)),
                h("td", {}, r.incident ? `#${r.incident}` : "—"),
              ),
            ),
          )
        : empty("No runs yet."),
  );
}

export async function run(ctx) {
  const id = ctx.params[0];
  ctx.title(`Runbook run ${id}`);
  const heading = ctx.heading(`Runbook run ${id}`);
  const allowed = await abilities(ctx.signal);
  const notice = h("div", { class: "notice", "aria-live": "polite" });
  const box = h("div", { id: "run" }, loading());
  ctx.main.append(notice, box);
  const forms = new Map();
  const logs = new Map(); // step id -> text read so far

  const signForm = (found, step) => {
    if (!forms.has(step.id)) {
      forms.set(
        step.id,
        actionForm({
          id: `sign-${step.id}`,
          label: `Sign off ${step.name}`,
          signal: ctx.signal,
          fields: [{ name: "comment", label: "What you did and saw", type: "textarea" }],
          button: "Sign off",
          submit: async (values) => {
            const done = await api(`/runbook-runs/${id}/steps/${encodeURIComponent(step.name)}/sign`, {
              method: "POST",
              body: { comment: values.comment || null },
              signal: ctx.signal,
            });
            notice.replaceChildren(h("div", { class: "alert alert-ok", role: "status" }, `You signed off ${done.step}; it is ${done.state}.`));
            return null;
          },
        }),
      );
    }
    return forms.get(step.id);
  };

  const mayBeSigner = (manual) =>
    allowed.admin || (manual.role ? allowed.roles.includes(manual.role) : allowed.teams.includes(manual.team));

  const load = async () => {
    const found = await api(`/runbook-runs/${id}`, { signal: ctx.signal });
    for (const step of found.steps) {
      if (step.kind !== "step" || !step.attempt) continue;
      const chunk = await api(`/steps/${step.id}/logs`, { signal: ctx.signal });
      logs.set(step.id, chunk.text);
    }
    return { found, logs: Object.fromEntries(logs) };
  };
  const draw = ({ found }) => {
    heading.replaceChildren(`Runbook ${found.runbook}, run ${id} `, stateBadge(found.state));
    const maySign = can(allowed, "runbook.sign", { environment: found.environment || null });
    return [
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Environment"),
        h("dd", {}, found.environment || "none"),
        h("dt", {}, "Started by"),
        h("dd", {}, found.created_by, ", ", when(found.created_at)),
        found.incident ? [h("dt", {}, "Incident"), h("dd", {}, `#${found.incident}`)] : null,
        Object.keys(found.params || {}).length ? [h("dt", {}, "Parameters"), h("dd", { class: "mono" }, Object.entries(found.params).map(([k, v]) => `${k}=${v}`).join(" "))] : null,
      ),
      h(
        "ol",
        { class: "run-steps" },
        found.steps.map((step) =>
          h(
            "li",
            { class: "run-step", "data-step": step.name },
            h("h2", {}, step.name, " ", stateBadge(step.state), step.started_at ? h("span", { class: "muted small" }, " ", took(step.started_at, step.finished_at)) : null),
            step.manual ? h("p", { class: "instructions" }, h("strong", {}, `Manual, signed by ${step.manual.role ? "role" : "team"} ${step.manual.role || step.manual.team}: `), step.manual.instructions) : null,
            step.error ? h("p", { class: "error-text" }, step.error) : null,
            step.detail && step.detail.reason ? h("p", { class: "small" }, step.detail.reason) : null,
            logs.get(step.id) ? h("pre", { class: "log", tabindex: "0", role: "region", "aria-label": `Output of ${step.name}` }, logs.get(step.id)) : null,
            step.manual && step.state === "waiting" && maySign && mayBeSigner(step.manual) ? signForm(found, step) : null,
          ),
        ),
      ),
    ];
  };
  await follow(ctx, box, load, draw);
}
