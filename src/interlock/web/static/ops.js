// Incidents (open, resolve, link to the deployment that caused them) and the review
// of break-glass overrides.

import { api, query } from "./api.js";
import { abilities, can, serverAction } from "./can.js";
import { empty, h, loading, table, when } from "./dom.js";
import { actionForm, folded } from "./forms.js";
import { follow } from "./live.js";
import * as views from "./views.js";

export async function incidents(ctx) {
  const page = views.incidents(ctx);
  const list = ctx.main.querySelector("#incidents");
  const allowed = await abilities(ctx.signal);
  const status = await api("/status", { signal: ctx.signal });
  const envs = status.environments.filter((environment) => can(allowed, "incident.manage", { environment }));
  if (envs.length) {
    const tools = h(
      "section",
      { class: "actions", "aria-labelledby": "incident-actions-title" },
      h("h2", { id: "incident-actions-title" }, "Act"),
      folded(
        "Open an incident…",
        actionForm({
          id: "open-incident",
          label: "Open an incident",
          signal: ctx.signal,
          fields: [
            { name: "environment", label: "Environment", type: "select", options: envs.map((e) => [e, e]) },
            { name: "service", label: "Service", type: "select", options: [["", "none (the whole environment)"], ...status.services.map((s) => [s, s])] },
            { name: "summary", label: "What is wrong?", type: "text", required: true },
            { name: "deployment", label: "Caused by deployment # (empty: the latest of that service there)", type: "number" },
          ],
          button: "Open the incident",
          danger: true,
          submit: async (found) => {
            const made = await api("/incidents", {
              method: "POST",
              body: {
                environment: found.environment,
                service: found.service || null,
                summary: found.summary,
                deployment: found.deployment ? Number(found.deployment) : null,
              },
              signal: ctx.signal,
            });
            ctx.announce(`Incident ${made.id} opened.`);
            return `Incident #${made.id} opened${made.deployment_id ? `, linked to deployment ${made.deployment_id}` : ""}.`;
          },
        }),
      ),
      folded(
        "Resolve an incident…",
        actionForm({
          id: "resolve-incident",
          label: "Resolve an incident",
          signal: ctx.signal,
          fields: [
            { name: "incident", label: "Incident #", type: "number", required: true },
            { name: "note", label: "How was it resolved?", type: "text", required: true },
          ],
          button: "Resolve",
          submit: async (found) => {
            const done = await api(`/incidents/${Number(found.incident)}/resolve`, { method: "POST", body: { note: found.note }, signal: ctx.signal });
            return `Incident #${done.id} resolved.`;
          },
        }),
      ),
      h("p", { class: "small" }, "To run a procedure for an incident, start a ", h("a", { href: "/ui/runbooks" }, "runbook"), " with its number."),
    );
    list.before(tools);
  }
  await page;
}

export async function overrides(ctx) {
  ctx.title("Overrides");
  ctx.heading("Break-glass overrides");
  ctx.main.append(h("p", { class: "lead" }, "Releases let through a closed window or a freeze. Each is reviewed by someone other than who made it."));
  const allowed = await abilities(ctx.signal);
  if (!serverAction(allowed, "audit.read")) {
    ctx.main.append(empty("Reviewing overrides needs audit.read.", "An administrator grants it under permissions: in interlock.yaml."));
    return;
  }
  const box = h("div", { id: "overrides" }, loading());
  ctx.main.append(box);
  const forms = new Map();
  const reviewForm = (o) => {
    if (!forms.has(o.id)) {
      forms.set(
        o.id,
        actionForm({
          id: `review-${o.id}`,
          label: `Review override ${o.id}`,
          signal: ctx.signal,
          fields: [{ name: "comment", label: "Review", type: "text", required: true }],
          button: "Record the review",
          submit: async (found) => {
            await api(`/overrides/${o.id}/review`, { method: "POST", body: found, signal: ctx.signal });
            return "Review recorded.";
          },
        }),
      );
    }
    return forms.get(o.id);
  };
  await follow(
    ctx,
    box,
    () => api(`/overrides${query({ limit: 100 })}`, { signal: ctx.signal }),
    (page) =>
      page.items.length
        ? table(
            "Overrides, newest first",
            ["#", "Release", "Environment", "By", "When", "Why", "Review"],
            page.items.map((o) =>
              h(
                "tr",
                { "data-override": o.id },
                h("td", { class: "mono" }, String(o.id)),
                h("td", {}, h("a", { href: `/ui/releases/${o.release_id}` }, `release ${o.release_id}`)),
                h("td", {}, o.environment),
                h("td", {}, o.actor),
                h("td", {}, when(o.at || o.created_at)),
                h("td", {}, o.reason),
                h("td", {}, o.reviewed_by ? `${o.reviewed_by}: ${o.review_comment || ""}` : o.actor === allowed.user ? "waits for someone else" : reviewForm(o)),
              ),
            ),
          )
        : empty("No overrides."),
  );
}
