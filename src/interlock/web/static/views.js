// Status, Waiting on me, Audit, Incidents.

import { api, download, everyItem, isAbort, query } from "./api.js";
import { follow } from "./live.js";
import { code, empty, errorBox, h, json, loading, slug, swap, table, took, when } from "./dom.js";

// ---- status -----------------------------------------------------------------

export async function status(ctx) {
  ctx.title("Status");
  ctx.heading("Status");
  ctx.main.append(h("p", { class: "lead" }, "Which version of every service runs in every environment, since when, and from which release."));
  const matrix = h("div", { id: "status-matrix" }, loading());
  ctx.main.append(matrix);
  await follow(ctx, matrix, () => api("/status", { signal: ctx.signal }), drawStatus);
}

function drawStatus(data) {
  if (!data.services.length) return empty("No services are visible to you.", "Services come from interlock.yaml and your permissions.");
  const byKey = new Map(data.entries.map((e) => [`${e.service}\u0000${e.environment}`, e]));
  const drifted = data.entries.filter((e) => e.drift).length;
  const rows = data.services.map((service) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", class: "mono" }, service),
      data.environments.map((env) => {
        const e = byKey.get(`${service}\u0000${env}`);
        if (!e) return h("td", { class: "none", "data-cell": `${service}/${env}` }, h("span", { class: "muted" }, "not deployed"));
        return h(
          "td",
          { class: ["cell", e.drift ? "drift" : null], "data-cell": `${service}/${env}` },
          h("div", { class: "version mono" }, e.version),
          h("div", { class: "small muted" }, "by ", e.deployed_by, ", ", when(e.deployed_at)),
          e.release_id ? h("div", { class: "small" }, h("a", { href: `/ui/releases/${e.release_id}` }, `release ${e.release_id}`)) : null,
          e.drift
            ? h(
                "div",
                { class: "drift-flag" },
                h("strong", {}, "Drift: "),
                "observed ",
                h("span", { class: "mono" }, e.observed_version || "?"),
                " at ",
                when(e.observed_at),
              )
            : e.observed_version
              ? h("div", { class: "small muted" }, "observed ", when(e.observed_at))
              : null,
        );
      }),
    ),
  );
  return [
    data.entries.length ? null : empty("Nothing has been deployed yet."),
    table("Service by environment", ["Service", ...data.environments], rows, { class: "matrix" }),
    h(
      "p",
      { class: "muted" },
      drifted
        ? `${drifted} ${drifted === 1 ? "place drifts" : "places drift"}: what was observed running differs from what Interlock deployed.`
        : "No drift: what was observed running matches what Interlock deployed.",
    ),
  ];
}

// ---- waiting on me ------------------------------------------------------------

export async function approvals(ctx) {
  ctx.title("Waiting on me");
  ctx.heading("Waiting on me");
  ctx.main.append(h("p", { class: "lead" }, "Approval gates open now where your approval is one of those still needed, and manual steps you can sign off."));
  const notice = h("div", { class: "notice", "aria-live": "polite" });
  const list = h("div", { id: "pending" }, loading());
  ctx.main.append(notice, list);
  const forms = new Map();
  let reload = () => {};

  // A decision with an optional comment (approve a gate, sign off a step): `send(comment)`
  // posts it and returns the sentence that says it was taken; a refusal shows under it.
  const decisionForm = ({ base, label, action, buttonKey, refused, send }) => {
    const comment = h("input", { id: `${base}-comment`, type: "text", maxlength: "4000" });
    const out = h("div", { class: "form-result" });
    const button = h("button", { type: "submit", class: "primary", "data-key": buttonKey || null }, action);
    return h(
      "form",
      {
        class: "decision inline-form",
        "aria-label": label,
        onsubmit: async (event) => {
          event.preventDefault();
          out.replaceChildren();
          button.disabled = true;
          try {
            const said = await send(comment.value.trim() || null);
            notice.replaceChildren(h("div", { class: "alert alert-ok", role: "status" }, said));
            reload();
          } catch (error) {
            if (isAbort(error)) return;
            out.append(errorBox(error, refused));
          } finally {
            button.disabled = false;
          }
        },
      },
      h("label", { for: comment.id }, "Comment (optional)"),
      comment,
      button,
      out,
    );
  };

  // A manual step I can sign off: its instructions and a sign-off form.
  const signCard = (p) => {
    const key = `run-${p.run}/${p.step}`;
    if (!forms.has(key)) {
      forms.set(
        key,
        decisionForm({
          base: `sign-${slug(key)}`,
          label: `Sign off ${p.step}`,
          action: "Sign off",
          refused: "Sign-off refused",
          send: async (comment) => {
            await api(`/runbook-runs/${p.run}/steps/${encodeURIComponent(p.step_name)}/sign`, {
              method: "POST",
              body: { comment },
              signal: ctx.signal,
            });
            return `You signed off ${p.step}.`;
          },
        }),
      );
    }
    const where = p.release ? h("a", { href: `/ui/releases/${p.release}` }, `Release ${p.release}`) : `Runbook run ${p.run}`;
    return h(
      "article",
      { class: "card", "data-release": p.release || null, "data-step": `${p.environment || ""}/${p.step}` },
      h("h2", {}, where, " ", h("span", { class: "mono" }, (p.items || []).join(", ") || p.runbook || "")),
      p.reason ? h("p", { class: "reason-text" }, p.reason) : null,
      h(
        "dl",
        { class: "inline" },
        h("dt", {}, "Manual step"),
        h("dd", {}, `${p.environment || "—"} · ${p.step}`),
        h("dt", {}, "Instructions"),
        h("dd", { class: "instructions" }, p.instructions || "—"),
        h("dt", {}, "Signed off by"),
        h("dd", {}, p.signer),
        h("dt", {}, "Waiting since"),
        h("dd", {}, when(p.waiting_since), " (", took(p.waiting_since), ")"),
      ),
      forms.get(key),
    );
  };

  const card = (p) => {
    if (p.kind === "manual") return signCard(p);
    const key = `${p.release}/${p.environment}/${p.gate}`;
    if (!forms.has(key)) {
      const base = `approve-${slug(key)}`;
      forms.set(
        key,
        decisionForm({
          base,
          label: `Approve release ${p.release} in ${p.environment}`,
          action: "Approve",
          buttonKey: `${base}-button`,
          refused: "Approval refused",
          send: async (comment) => {
            const result = await api(`/releases/${p.release}/approvals`, {
              method: "POST",
              body: { decision: "approve", environment: p.environment, gate: p.gate, comment },
              signal: ctx.signal,
            });
            return `You approved release ${p.release} (${result.environment}/${result.gate}); the gate is now ${String(result.gate_state).replaceAll("_", " ")}.`;
          },
        }),
      );
    }
    return h(
      "article",
      { class: "card", "data-release": p.release },
      h("h2", {}, h("a", { href: `/ui/releases/${p.release}` }, `Release ${p.release}`), " ", h("span", { class: "mono" }, (p.items || []).join(", "))),
      h("p", { class: "reason-text" }, p.reason),
      h(
        "dl",
        { class: "inline" },
        h("dt", {}, "Gate"),
        h("dd", {}, `${p.environment} · ${p.gate}`),
        h("dt", {}, "Author"),
        h("dd", {}, p.created_by),
        h("dt", {}, "Waiting since"),
        h("dd", {}, when(p.waiting_since), " (", took(p.waiting_since), ")"),
        h("dt", {}, "Still needed"),
        h("dd", {}, (p.rules || []).map((r, i) => [i ? "; " : "", `${r.rule}: ${r.missing} more`])),
      ),
      forms.get(key),
      h("p", { class: "small" }, "To reject, open the release: a rejection needs a comment."),
    );
  };

  const draw = (pending) => {
    const badge = document.getElementById("pending-count");
    if (badge) {
      badge.textContent = String(pending.length);
      badge.hidden = pending.length === 0;
    }
    if (!pending.length) {
      return empty("Nothing waits on you.", "When a release reaches an approval gate you can clear, or a manual step you can sign, it appears here.");
    }
    return pending.map(card);
  };
  const load = () => everyItem("/approvals/pending", { limit: 500 }, { signal: ctx.signal });
  reload = async () => {
    try {
      swap(list, draw(await load()));
    } catch (error) {
      if (!isAbort(error)) notice.append(errorBox(error));
    }
  };
  await follow(ctx, list, load, draw);
}

// ---- audit -----------------------------------------------------------------------

export async function audit(ctx) {
  ctx.title("Audit");
  ctx.heading("Audit trail");
  const cursor = ctx.query.get("cursor") || "";
  const filters = Object.fromEntries(AUDIT_FILTERS.map(([name]) => [name, ctx.query.get(name) || ""]));
  ctx.main.append(
    h("p", { class: "lead" }, "Every action, newest first. Each event carries the hash of the one before it, so any change to the past breaks the chain."),
  );
  const result = h("div", { id: "verify-result", "aria-live": "polite" });
  const button = h(
    "button",
    {
      type: "button",
      id: "verify",
      onclick: async () => {
        result.replaceChildren(loading("Verifying the whole chain…"));
        button.disabled = true;
        try {
          const found = await api("/audit/verify", { signal: ctx.signal });
          result.replaceChildren(verdict(found));
        } catch (error) {
          if (isAbort(error)) return;
          result.replaceChildren(errorBox(error, "Could not verify"));
        } finally {
          button.disabled = false;
        }
      },
    },
    "Verify the chain",
  );
  ctx.main.append(h("section", { class: "verify", "aria-label": "Verify" }, button, result));
  ctx.main.append(auditFilters(ctx, filters));
  const events = h("div", { id: "audit-events" }, loading());
  ctx.main.append(events);
  const page = await api(`/audit${query({ newest_first: "true", limit: 50, cursor, ...filters })}`, { signal: ctx.signal });
  swap(events, drawAudit(page, cursor, filters));
}

const AUDIT_FILTERS = [
  ["actor", "Who"],
  ["action", "Action (e.g. release.created)"],
  ["object_type", "Object type"],
  ["object_id", "Object id"],
];

function auditFilters(ctx, filters) {
  const exported = h("div", { id: "export-result", "aria-live": "polite" });
  const exportButton = h(
    "button",
    {
      type: "button",
      id: "export",
      onclick: async () => {
        exported.replaceChildren(loading("Exporting…"));
        try {
          const blob = await download("/audit/export", { signal: ctx.signal });
          const link = h("a", { download: "interlock-audit.jsonl", id: "export-link" }, "Download interlock-audit.jsonl");
          link.setAttribute("href", URL.createObjectURL(blob));
          exported.replaceChildren(h("p", { role: "status" }, `${blob.size} bytes, every event with its hashes (check it offline with `, code("interlock audit verify --file"), "). ", link));
        } catch (error) {
          if (isAbort(error)) return;
          exported.replaceChildren(errorBox(error, "Could not export"));
        }
      },
    },
    "Export the trail",
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter the audit trail",
      onsubmit: (event) => {
        event.preventDefault();
        const found = Object.fromEntries([...form.querySelectorAll("input")].map((el) => [el.name, el.value.trim()]));
        ctx.navigate(`/ui/audit${query(found)}`);
      },
    },
    AUDIT_FILTERS.map(([name, label]) =>
      h("div", { class: "field" }, h("label", { for: `audit-${name}` }, label), h("input", { id: `audit-${name}`, name, type: "text", value: filters[name] || "", spellcheck: "false" })),
    ),
    h("button", { type: "submit" }, "Filter"),
    Object.values(filters).some(Boolean) ? h("a", { href: "/ui/audit", class: "clear" }, "Clear filters") : null,
  );
  return h("section", { class: "audit-tools", "aria-label": "Filter and export" }, form, exportButton, exported);
}

function against(found) {
  const used = found.published;
  if (!used) return " No published checkpoint to check against: start the server with --audit-checkpoints DIR to keep one outside the database.";
  return [" Checked against the published checkpoint ", h("span", { class: "mono" }, used.checkpoint), ` (published ${used.at} by ${used.instance}, ${used.file}:${used.line}).`];
}

function verdict(found) {
  if (found.ok) {
    return h(
      "div",
      { class: "alert alert-ok", role: "status" },
      h("strong", {}, "Intact. "),
      `${found.count} events verified`,
      found.head ? [", head ", h("span", { class: "mono" }, found.head.checkpoint)] : null,
      ".",
      against(found),
    );
  }
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", {}, "Broken. "),
    `${found.count} events checked; the chain does not hold.`,
    against(found),
    h(
      "ul",
      {},
      (found.problems || []).map((p) =>
        h("li", {}, typeof p === "object" && p ? Object.entries(p).map(([k, v], i) => [i ? "; " : "", `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`]) : String(p)),
      ),
    ),
  );
}

function objectLink(type, id) {
  const text = `${type} ${id}`;
  if (!/^\d+$/.test(String(id))) return text;
  if (type === "release") return h("a", { href: `/ui/releases/${id}` }, text);
  if (type === "step") return h("a", { href: `/ui/steps/${id}/logs` }, text);
  return text;
}

function drawAudit(page, cursor, filters) {
  if (!page.items.length) return empty(cursor ? "No older events." : "The audit trail is empty.");
  const rows = page.items.map((e) => {
    const details = { before: e.before, after: e.after, data: e.data };
    const hasDetails = e.before != null || e.after != null || (e.data && Object.keys(e.data).length);
    return h(
      "tr",
      {},
      h("td", { class: "mono" }, String(e.seq)),
      h("td", {}, when(e.at)),
      h("td", {}, e.actor),
      h("td", { class: "mono" }, e.action),
      h(
        "td",
        {},
        objectLink(e.object_type, e.object_id),
      ),
      h("td", { class: "why" }, e.reason || ""),
      h("td", {}, hasDetails ? h("details", {}, h("summary", {}, "Show"), json(details)) : ""),
    );
  });
  const older = page.next_cursor ? h("a", { href: `/ui/audit${query({ ...filters, cursor: page.next_cursor })}` }, "Older events →") : null;
  const newest = cursor ? h("a", { href: `/ui/audit${query(filters)}` }, "← Newest events") : null;
  return [
    table("Audit events, newest first", ["#", "When", "Who", "Action", "Object", "Why", "Details"], rows, { class: "audit" }),
    newest || older ? h("nav", { class: "pager", "aria-label": "Pages" }, newest, older) : null,
  ];
}

// ---- incidents -----------------------------------------------------------------

export async function incidents(ctx) {
  ctx.title("Incidents");
  ctx.heading("Incidents");
  ctx.main.append(
    h("p", { class: "lead" }, "Failures in an environment, linked to the deployment that caused them. Open one by hand with ", code("interlock incident open"), "."),
  );
  const box = h("div", { id: "incidents" }, loading());
  ctx.main.append(box);
  const load = async () => {
    const [open, resolved] = await Promise.all([
      everyItem("/incidents", { state: "open", limit: 1000 }, { signal: ctx.signal }),
      api(`/incidents${query({ state: "resolved", limit: RESOLVED_SHOWN })}`, { signal: ctx.signal }),
    ]);
    return { open, resolved: resolved.items, older: resolved.next_cursor !== null };
  };
  await follow(ctx, box, load, drawIncidents);
}

function cause(i) {
  if (i.release_id) return h("a", { href: `/ui/releases/${i.release_id}` }, `release ${i.release_id}`);
  if (i.deployment_id) return `deployment ${i.deployment_id}`;
  return "—";
}

const RESOLVED_SHOWN = 100; // the latest; the page says when there are older ones

function drawIncidents({ open, resolved, older }) {
  const openRows = open.map((i) =>
    h(
      "tr",
      {},
      h("td", { class: "mono" }, `#${i.id}`),
      h("td", {}, i.service || "—"),
      h("td", {}, i.environment),
      h("td", { class: "reason" }, i.summary),
      h("td", {}, when(i.opened_at), " (", took(i.opened_at), ")"),
      h("td", {}, i.opened_by),
      h("td", {}, cause(i)),
    ),
  );
  const resolvedRows = resolved.map((i) =>
    h(
      "tr",
      {},
      h("td", { class: "mono" }, `#${i.id}`),
      h("td", {}, i.service || "—"),
      h("td", {}, i.environment),
      h("td", { class: "reason" }, i.summary),
      h("td", {}, when(i.opened_at)),
      h("td", {}, when(i.resolved_at), i.resolved_by ? ` by ${i.resolved_by}` : ""),
      h("td", {}, took(i.opened_at, i.resolved_at)),
      h(
        "td",
        {},
        i.resolution || "",
        i.resolved_by_deployment ? ` (deployment ${i.resolved_by_deployment})` : "",
        i.resolution_note ? h("div", { class: "small" }, i.resolution_note) : null,
      ),
      h("td", {}, cause(i)),
    ),
  );
  return [
    h(
      "section",
      { "aria-labelledby": "open-title" },
      h("h2", { id: "open-title" }, `Open (${open.length})`),
      open.length
        ? table("Open incidents", ["#", "Service", "Environment", "Summary", "Opened", "By", "Caused by"], openRows, { class: "incidents" })
        : empty("No open incidents."),
    ),
    h(
      "section",
      { "aria-labelledby": "resolved-title" },
      h("h2", { id: "resolved-title" }, older ? `Resolved (the latest ${resolved.length})` : `Resolved (${resolved.length})`),
      older ? h("p", { class: "small" }, "Older resolved incidents: ", code("interlock incident list --all"), ".") : null,
      resolved.length
        ? table(
            "Resolved incidents",
            ["#", "Service", "Environment", "Summary", "Opened", "Resolved", "Time to restore", "How", "Caused by"],
            resolvedRows,
            { class: "incidents" },
          )
        : empty("No resolved incidents yet."),
    ),
  ];
}
