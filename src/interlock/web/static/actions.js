// What a person does to a release from its page: promote it, roll a service back
// (the dry run first), resolve a step that needs attention, break glass through a
// window or freeze. Each form is there only for who may use it (can.js).

import { api } from "./api.js";
import { can } from "./can.js";
import { code, h, slug } from "./dom.js";
import { actionForm, folded } from "./forms.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/**
 * The action forms of one release page. Forms are made once and kept, so a
 * redraw while someone types keeps what they typed (swap() keeps their focus).
 */
export function releaseActions(ctx, { refresh, say, abilities }) {
  const kept = new Map();
  const once = (key, make) => {
    if (!kept.has(key)) kept.set(key, make());
    return kept.get(key);
  };

  function rollbackForm(release, environment, service) {
    const id = `rollback-${slug(`${environment}-${service}`)}`;
    let dryRun = null; // the reason the dry run was asked with: confirming needs the same one
    const preview = h("div", { class: "dry-run", id: `${id}-preview`, "aria-live": "polite" });
    const form = actionForm({
      id,
      label: `Roll back ${service} in ${environment}`,
      signal: ctx.signal,
      fields: [
        { name: "to", label: "To version (empty: the last good one)" },
        { name: "reason", label: "Why roll back?", type: "textarea", required: true },
      ],
      button: "Show what would run",
      danger: true,
      submit: async (found) => {
        const body = { service, environment, to: found.to || null, reason: found.reason };
        const key = JSON.stringify(body);
        if (dryRun !== key) {
          const view = await api("/rollbacks", { method: "POST", body: { ...body, dry_run: true }, signal: ctx.signal });
          dryRun = key;
          preview.replaceChildren(
            h("p", {}, h("strong", {}, "Dry run: "), `${service} goes from ${view.from} back to ${view.to} in ${environment}. These steps would run:`),
            h("ol", { class: "dry-run-steps" }, view.steps.map((s) => h("li", {}, h("code", {}, s.runs)))),
            h("p", {}, "Nothing has changed yet. Press ", h("strong", {}, "Roll back now"), " to run it."),
          );
          form.querySelector(`#${id}-submit`).textContent = "Roll back now";
          return null;
        }
        const done = await api("/rollbacks", { method: "POST", body, signal: ctx.signal });
        dryRun = null;
        form.querySelector(`#${id}-submit`).textContent = "Show what would run";
        preview.replaceChildren();
        say(`Rolling ${service} back to ${done.to} in ${environment}: release ${done.release}.`);
        refresh();
        return h("p", { class: "ok", role: "status" }, "Rollback started: ", h("a", { href: `/ui/releases/${done.release}` }, `release ${done.release}`), ".");
      },
    });
    form.addEventListener("input", () => {
      // What was shown no longer matches what would be sent: show it again first.
      if (dryRun) {
        dryRun = null;
        form.querySelector(`#${id}-submit`).textContent = "Show what would run";
        preview.replaceChildren();
      }
    });
    form.append(preview);
    return folded(`Roll back ${service} in ${environment}…`, form, { "data-rollback": `${environment}/${service}` });
  }

  function overrideForm(release, environment) {
    return folded(
      `Break glass in ${environment}…`,
      actionForm({
        id: `override-${slug(environment)}`,
        label: `Break-glass override in ${environment}`,
        signal: ctx.signal,
        intro: h("p", { class: "hint" }, "Lets this release through a closed window or a freeze in ", environment, ". It is audited and flagged for review by someone else."),
        fields: [{ name: "reason", label: "Why is this an emergency?", type: "textarea", required: true }],
        button: "Override the window",
        danger: true,
        submit: async (found) => {
          const made = await api(`/releases/${release.id}/overrides`, {
            method: "POST",
            body: { environment, reason: found.reason },
            signal: ctx.signal,
          });
          say(`You overrode the window of ${environment} (override ${made.id}); it waits for review.`);
          refresh();
          return `Override ${made.id} recorded.`;
        },
      }),
      { "data-override": environment },
    );
  }

  function promoteForm(release, next) {
    return actionForm({
      id: "promote",
      label: `Promote to ${next}`,
      signal: ctx.signal,
      intro: h("p", {}, `This release stopped after ${release.environment || release.environments.at(-1)}. Promote the same artifacts to ${next}: a new release that starts there.`),
      fields: [{ name: "reason", label: "Reason for the promotion", value: release.reason, required: true }],
      button: `Promote to ${next}`,
      submit: async (found) => {
        const made = await api("/releases", {
          method: "POST",
          body: {
            items: release.items.map((i) => ({ service: i.service, version: i.version, digest: i.digest || null })),
            reason: found.reason,
            from: next,
          },
          signal: ctx.signal,
        });
        say(`Promoted to ${next}: release ${made.id}.`);
        ctx.navigate(`/ui/releases/${made.id}`);
        return null;
      },
    });
  }

  /** The actions section of a release page (null when there is nothing to do). */
  function section(release, allEnvironments) {
    const services = release.items.map((i) => i.service);
    const parts = [];
    // Promote: a succeeded release whose route ended before the last environment.
    const last = release.environments.at(-1);
    const index = allEnvironments.indexOf(last);
    const next = index >= 0 ? allEnvironments[index + 1] : undefined;
    if (release.state === "succeeded" && !(release.deployments || []).some((d) => d.kind === "rollback") && next && can(abilities, "release.create", { environment: next, services })) {
      parts.push(once(`promote/${next}`, () => promoteForm(release, next)));
    }
    // Roll back: each service in each environment it was deployed to by this release.
    const reached = new Set((release.deployments || []).filter((d) => d.kind === "deploy" && d.started_at).map((d) => d.environment));
    for (const environment of release.environments) {
      if (!reached.has(environment)) continue;
      for (const service of services) {
        if (can(abilities, "rollback", { environment, services: [service] })) {
          parts.push(once(`rollback/${environment}/${service}`, () => rollbackForm(release, environment, service)));
        }
      }
    }
    // Break glass: only while the release still goes somewhere.
    if (!TERMINAL.has(release.state)) {
      for (const environment of release.environments) {
        if (can(abilities, "freeze.override", { environment, services })) {
          parts.push(once(`override/${environment}`, () => overrideForm(release, environment)));
        }
      }
    }
    if (!parts.length) return null;
    return h("section", { class: "actions", "aria-labelledby": "actions-title" }, h("h2", { id: "actions-title" }, "Actions"), parts);
  }

  /** The decision on a step that needs attention (or the command, for who may not). */
  function resolveForm(release, deployment, step) {
    const services = release.items.map((i) => i.service);
    if (!can(abilities, "rollback", { environment: deployment.environment, services })) {
      return h("div", { class: "hint" }, "Needs a decision by someone who may roll back here: ", code(`interlock resolve ${step.id} --retry|--skip|--fail|--rollback --reason "…"`));
    }
    return once(`resolve/${step.id}`, () =>
      actionForm({
        id: `resolve-${step.id}`,
        label: `Resolve ${deployment.environment}/${step.key}`,
        signal: ctx.signal,
        fields: [
          {
            name: "action",
            label: "Decision",
            type: "select",
            options: [
              ["retry", "Retry the step"],
              ["skip", "Skip it and go on"],
              ["fail", "Fail the deployment"],
              ["rollback", "Roll back the deployment"],
            ],
          },
          { name: "reason", label: "Why?", type: "text", required: true },
        ],
        button: "Resolve",
        submit: async (found) => {
          const done = await api(`/steps/${step.id}/resolve`, { method: "POST", body: found, signal: ctx.signal });
          say(`You resolved ${deployment.environment}/${done.key}: ${found.action}; it is now ${done.state.replaceAll("_", " ")}.`);
          refresh();
          return null;
        },
      }),
    );
  }

  return { section, resolveForm };
}
