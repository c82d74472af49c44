// Releases: the list, one release with its gates and deployments, a step's log.

import { releaseActions } from "./actions.js";
import { api, backoff, isAbort, poll, query, session, STOP } from "./api.js";
import { abilities, can, canAnywhere } from "./can.js";
import { onChange } from "./live.js";
import {
  code,
  empty,
  errorBox,
  h,
  items,
  loading,
  setText,
  shortDigest,
  slug,
  stateBadge,
  swap,
  table,
  took,
  when,
} from "./dom.js";

const STATES = ["scheduled", "running", "needs_attention", "succeeded", "failed", "cancelled"];
const ACTIVE = ["scheduled", "running", "needs_attention"];
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const STEP_DONE = new Set(["succeeded", "failed", "skipped", "cancelled"]);
const WAIT_KINDS = {
  approval: "approval gate",
  window: "deploy window",
  freeze: "freeze",
  check: "polled gate",
  lock: "environment lock",
  queue: "queue",
  paused: "paused deployment ahead",
  manual: "manual step",
  attention: "needs a person",
  scheduled: "scheduled",
};

/** A step's tries: a gate that polls looks again and again, with no maximum. */
function tries(s) {
  if (!s.attempt) return "—";
  if (s.kind === "gate" || s.attempt > s.max_attempts) return `try ${s.attempt}`;
  return `${s.attempt} of ${s.max_attempts}`;
}

// ---- the list -------------------------------------------------------------

export async function list(ctx) {
  ctx.title("Releases");
  ctx.heading("Releases");
  const create = h("p", { class: "page-actions" });
  ctx.main.append(create);
  abilities(ctx.signal)
    .then((allowed) => {
      if (canAnywhere(allowed, "release.create")) create.append(h("a", { href: "/ui/releases/new", class: "button", id: "new-release" }, "New release"));
    })
    .catch(() => {}); // the list reports trouble with the server
  const state = ctx.query.get("state") || "";
  const service = ctx.query.get("service") || "";
  const cursor = ctx.query.get("cursor") || "";
  const states = state === "active" ? ACTIVE : state ? [state] : [];

  const stateField = h(
    "select",
    { id: "filter-state", name: "state" },
    h("option", { value: "" }, "Any state"),
    h("option", { value: "active", selected: state === "active" }, "Active (scheduled, running, needs attention)"),
    STATES.map((s) => h("option", { value: s, selected: state === s }, s.replaceAll("_", " "))),
  );
  const serviceField = h("input", { id: "filter-service", name: "service", type: "text", value: service, spellcheck: "false" });
  const filters = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter releases",
      onsubmit: (event) => {
        event.preventDefault();
        ctx.navigate(`/ui/releases${query({ state: stateField.value, service: serviceField.value.trim() })}`);
      },
    },
    h("div", { class: "field" }, h("label", { for: "filter-state" }, "State"), stateField),
    h("div", { class: "field" }, h("label", { for: "filter-service" }, "Service"), serviceField),
    h("button", { type: "submit" }, "Filter"),
    state || service ? h("a", { href: "/ui/releases", class: "clear" }, "Clear filters") : null,
  );
  const problem = h("div", { class: "refresh-error" });
  const results = h("div", { id: "release-list" }, loading());
  ctx.main.append(filters, problem, results);

  let last = "";
  const load = async () => {
    const page = await api(`/releases${query({ state: states, service, cursor, limit: 50 })}`, { signal: ctx.signal });
    const text = JSON.stringify(page);
    if (text === last) return;
    last = text;
    swap(results, releaseTable(page, { state, service, cursor }));
  };
  await load();
  if (cursor) return; // the first page follows new releases; older pages stay as they are
  await onChange(ctx.signal, async () => {
    try {
      await load();
      problem.replaceChildren();
    } catch (error) {
      if (!isAbort(error)) problem.replaceChildren(errorBox(error, "Could not refresh the list"));
    }
  });
}

function releaseTable(page, { state, service, cursor }) {
  if (!page.items.length) {
    if (state || service || cursor) return empty("No release matches these filters.");
    return empty(
      "No releases yet.",
      h("span", {}, "Create one with ", code('interlock release create SERVICE@VERSION --reason "…"'), "."),
    );
  }
  const rows = page.items.map((r) =>
    h(
      "tr",
      { "data-release": r.id },
      h("td", {}, h("a", { href: `/ui/releases/${r.id}`, "aria-label": `Release ${r.id}` }, `#${r.id}`)),
      h("td", {}, stateBadge(r.state)),
      h("td", { class: "mono" }, items(r.items)),
      h("td", {}, r.environment || (r.scheduled_at ? h("span", {}, "starts ", when(r.scheduled_at)) : "—")),
      h("td", {}, r.created_by, r.on_behalf_of ? h("span", { class: "muted" }, ` for ${r.on_behalf_of}`) : null),
      h("td", {}, when(r.created_at)),
      h("td", { class: "reason", title: r.reason }, r.reason),
    ),
  );
  const older = page.next_cursor
    ? h("a", { href: `/ui/releases${query({ state, service, cursor: page.next_cursor })}` }, "Older releases →")
    : null;
  const newest = cursor ? h("a", { href: `/ui/releases${query({ state, service })}` }, "← Newest releases") : null;
  return [
    table("Releases, newest first", ["Release", "State", "Services", "Environment", "Author", "Created", "Reason"], rows, {
      class: "releases",
    }),
    newest || older ? h("nav", { class: "pager", "aria-label": "Pages" }, newest, older) : null,
  ];
}

// ---- one release ------------------------------------------------------------

export async function detail(ctx) {
  const id = ctx.params[0];
  ctx.title(`Release ${id}`);
  const heading = ctx.heading(`Release ${id}`);
  const live = h("p", { class: "live", role: "status" }, "Loading…");
  const notice = h("div", { class: "notice", "aria-live": "polite" });
  const body = h("div", { class: "release" });
  ctx.main.append(live, notice, body);
  const forms = new Map();
  let cancelForm = null;
  let release;
  let shown = "";

  try {
    release = await api(`/releases/${id}`, { signal: ctx.signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    live.textContent = "";
    body.append(errorBox(error));
    if (error.status === 404) body.append(h("p", {}, h("a", { href: "/ui/releases" }, "Back to the releases")));
    return;
  }

  const say = (text, ok = true) => {
    notice.replaceChildren(h("div", { class: ["alert", ok ? "alert-ok" : "alert-error"], role: "status" }, text));
  };
  const allowed = await abilities(ctx.signal);
  const room = releaseActions(ctx, { refresh: () => refresh(), say, abilities: allowed });
  const services = release.items.map((i) => i.service);

  const draw = (found) => {
    const before = release.state;
    release = found;
    shown = JSON.stringify(found);
    ctx.title(`Release ${id} · ${found.state.replaceAll("_", " ")}`);
    heading.replaceChildren(`Release ${id} `, stateBadge(found.state));
    swap(body, [
      summary(found),
      route(found),
      waiting(found),
      deployments(found, (d, s) => room.resolveForm(found, d, s)),
      room.section(found, Object.keys(allowed.environments)),
      TERMINAL.has(found.state) || !can(allowed, "release.cancel", { environment: found.environment, services })
        ? null
        : cancelSection(),
    ]);
    if (before !== found.state) ctx.announce(`Release ${id} is now ${found.state.replaceAll("_", " ")}.`);
  };

  // Show what an action here changed at once, without waiting on the long-poll's turn.
  const refresh = async () => {
    try {
      const found = await api(`/releases/${id}`, { signal: ctx.signal });
      if (found.revision >= release.revision && JSON.stringify(found) !== shown) draw(found);
    } catch {
      // the long-poll below reports trouble with the server
    }
  };

  function decisionForm(gate) {
    const key = `${gate.environment}/${gate.gate}`;
    if (forms.has(key)) return forms.get(key);
    const base = `decide-${slug(key)}`;
    const comment = h("textarea", {
      id: `${base}-comment`,
      name: "comment",
      rows: "2",
      maxlength: "4000",
      "aria-describedby": `${base}-hint`,
    });
    const out = h("div", { class: "form-result" });
    const approve = h("button", { type: "submit", class: "primary", "data-key": `${base}-approve` }, "Approve");
    const reject = h("button", { type: "button", class: "danger", "data-key": `${base}-reject` }, "Reject");
    const decide = async (decision) => {
      const text = comment.value.trim();
      out.replaceChildren();
      comment.removeAttribute("aria-invalid");
      if (decision === "reject" && !text) {
        comment.setAttribute("aria-invalid", "true");
        out.append(errorBox("A rejection needs a comment that says why. Write it above, then press Reject again."));
        comment.focus();
        return;
      }
      approve.disabled = true;
      reject.disabled = true;
      try {
        const result = await api(`/releases/${id}/approvals`, {
          method: "POST",
          body: { decision, environment: gate.environment, gate: gate.gate, comment: text || null },
          signal: ctx.signal,
        });
        comment.value = "";
        const verb = decision === "approve" ? "approved" : "rejected";
        const what = `${result.environment}/${result.gate}`;
        say(
          result.recorded
            ? `You ${verb} ${what}; the gate is now ${String(result.gate_state).replaceAll("_", " ")}.`
            : `You had already ${verb} ${what}; nothing changed.`,
        );
        out.append(h("p", { class: "ok", role: "status" }, `Your ${decision === "approve" ? "approval" : "rejection"} is recorded.`));
        refresh();
      } catch (error) {
        if (isAbort(error)) return;
        out.append(errorBox(error, decision === "approve" ? "Approval refused" : "Rejection refused"));
      } finally {
        approve.disabled = false;
        reject.disabled = false;
      }
    };
    reject.addEventListener("click", () => decide("reject"));
    const form = h(
      "form",
      {
        class: "decision",
        "aria-label": `Decide on ${key}`,
        onsubmit: (event) => {
          event.preventDefault();
          decide("approve");
        },
      },
      h("label", { for: comment.id }, "Comment"),
      h("p", { id: `${base}-hint`, class: "hint" }, "Optional to approve; required to reject."),
      comment,
      h("div", { class: "buttons" }, approve, reject),
      out,
    );
    forms.set(key, form);
    return form;
  }

  function cancelSection() {
    if (cancelForm) return cancelForm;
    const reason = h("input", { id: "cancel-reason", name: "reason", type: "text", maxlength: "4000", required: true });
    const out = h("div", { class: "form-result" });
    const button = h("button", { type: "submit", class: "danger" }, "Cancel release");
    cancelForm = h(
      "details",
      { class: "cancel" },
      h("summary", {}, "Cancel this release…"),
      h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            out.replaceChildren();
            const text = reason.value.trim();
            if (!text) {
              out.append(errorBox("Say why you cancel it."));
              reason.focus();
              return;
            }
            button.disabled = true;
            try {
              const found = await api(`/releases/${id}/cancel`, { method: "POST", body: { reason: text }, signal: ctx.signal });
              say(`You cancelled release ${id}.`);
              if (found.revision !== release.revision) draw({ ...found, waiting_on: [], waits: [] });
            } catch (error) {
              if (isAbort(error)) return;
              out.append(errorBox(error, "Cancel refused"));
            } finally {
              button.disabled = false;
            }
          },
        },
        h("p", {}, "Nothing new starts; running steps are stopped. This cannot be undone."),
        h("label", { for: "cancel-reason" }, "Why cancel?"),
        reason,
        h("div", { class: "buttons" }, button),
        out,
      ),
    );
    return cancelForm;
  }

  // Every wait of the release (the API's `waits`): approvals with their decision form,
  // windows, freezes, checks, locks, queues, manual steps and steps that need a person.
  function waiting(found) {
    const waits = found.waits || [];
    if (!waits.length) return null;
    return h(
      "section",
      { class: "waiting", "aria-labelledby": "waiting-title" },
      h("h2", { id: "waiting-title" }, "Waiting on"),
      waits.map((w) =>
        h(
          "article",
          {
            class: ["gate", "wait", `wait-${w.kind}`],
            "data-wait": w.kind,
            "data-gate": w.gate ? `${w.environment}/${w.gate}` : null,
            "data-step": w.step ? `${w.environment || ""}/${w.step}` : null,
          },
          h(
            "h3",
            {},
            waitTitle(w),
            " ",
            h("span", { class: "muted" }, `(${WAIT_KINDS[w.kind] || w.kind})`),
          ),
          h(
            "p",
            { class: "wait-summary" },
            w.since ? ["since ", when(w.since), h("span", { class: "muted" }, " (", took(w.since), ")"), ": "] : null,
            w.summary,
          ),
          w.kind === "approval" ? approvalRules(w) : waitFacts(w),
          w.kind === "approval" ? decisionForm({ ...w, gate: w.gate }) : null,
        ),
      ),
    );
  }

  function waitTitle(w) {
    if (w.kind === "lock") return `${w.environment} is locked`;
    if (w.kind === "queue" || w.kind === "paused") return `${w.environment} · queued behind deployment ${w.behind_deployment}`;
    if (w.kind === "scheduled") return "Scheduled";
    return `${w.environment || "—"} · ${w.gate || w.step || ""}`;
  }

  function waitFacts(w) {
    const row = (label, value) => (value === null || value === undefined || value === "" ? null : [h("dt", {}, label), h("dd", {}, value)]);
    const list = (names) => (names && names.length ? names.join(", ") : "nobody (check the roles and permissions in interlock.yaml)");
    return h(
      "dl",
      { class: "inline" },
      w.kind === "window" ? [row("Opens at", w.opens_at ? when(w.opens_at) : "not within the horizon"), row("Why", w.reason)] : null,
      w.kind === "freeze"
        ? [row("Frozen until", w.until ? when(w.until) : null), row("Why", w.reason), row("Set in", w.set_by ? `${w.set_by} (config v${w.config_version}${w.loaded_by ? `, loaded by ${w.loaded_by}` : ""})` : null), row("Looks again at", w.opens_at ? when(w.opens_at) : null)]
        : null,
      w.kind === "check"
        ? [row("Last result", w.last), row("Try", String(w.tries)), row("Next try", w.next_try ? when(w.next_try) : "now")]
        : null,
      w.kind === "lock" ? [row("Locked by", w.by), row("Why", w.reason)] : null,
      w.kind === "queue" || w.kind === "paused"
        ? [
            row("Behind release", w.behind_release ? h("a", { href: `/ui/releases/${w.behind_release}` }, `Release ${w.behind_release}`) : null),
            row("Services", (w.services || []).join(", ")),
            row("Its state", w.state ? stateBadge(w.state) : null),
            w.kind === "paused" ? row("Paused at step", w.paused_step ? `${w.paused_step} (id ${w.paused_step_id})` : null) : null,
          ]
        : null,
      w.kind === "manual"
        ? [
            row("Instructions", w.instructions),
            row("Signed off by", `${w.signer_kind} ${w.signer}`),
            h("dt", {}, "Who can sign"),
            h("dd", { class: "can-sign" }, list(w.can_sign)),
            row("Sign with", code(w.sign)),
          ]
        : null,
      w.kind === "attention" ? [row("Error", w.error), row("Decide with", code(w.resolve))] : null,
      w.kind === "scheduled" ? row("Starts at", w.starts_at ? when(w.starts_at) : null) : null,
    );
  }

  function approvalRules(gate) {
    const me = ctxUser();
    return [
      h(
        "ul",
        { class: "rules" },
        (gate.rules || []).map((rule) => {
          const others = rule.can_clear || [];
          return h(
            "li",
            { class: "rule" },
            h("strong", {}, rule.rule),
            h(
              "dl",
              { class: "inline" },
              h("dt", {}, "Given by"),
              h(
                "dd",
                { class: "given" },
                rule.given_by && rule.given_by.length
                  ? h(
                      "ul",
                      {},
                      rule.given_by.map((g) =>
                        h(
                          "li",
                          {},
                          h("strong", {}, g.by),
                          " at ",
                          when(g.at),
                          g.expires_at ? h("span", {}, " (expires ", when(g.expires_at), ")") : null,
                          g.comment ? h("q", {}, g.comment) : null,
                        ),
                      ),
                    )
                  : "nobody yet",
              ),
              h("dt", {}, "Still needed"),
              h("dd", {}, rule.missing ? String(rule.missing) : "none: this rule is met"),
              rule.missing ? h("dt", {}, "Who else can clear it") : null,
              rule.missing
                ? h(
                    "dd",
                    { class: "can-clear" },
                    others.length
                      ? others.map((name, i) => [i ? ", " : "", name, name === me ? " (you)" : ""])
                      : "nobody (check the roles and permissions in interlock.yaml)",
                  )
                : null,
            ),
          );
        }),
      ),
      gate.expires_at
        ? h("p", { class: "expiry" }, "The approvals given so far count until ", when(gate.expires_at), " (the earliest expiry).")
        : null,
    ];
  }

  draw(release);

  // Long-poll the release's revision: the server answers as soon as it moves.
  const turn = async (failures) => {
    if (TERMINAL.has(release.state)) {
      live.textContent = `This release has ${release.state === "succeeded" ? "succeeded" : `ended (${release.state})`}; the page no longer updates.`;
      return STOP;
    }
    if (!failures) setText(live, "Live: this page updates as the release moves.");
    const found = await api(`/releases/${id}${query({ since: release.revision, wait: 20 })}`, { signal: ctx.signal });
    if (JSON.stringify(found) !== shown) draw(found);
    return 0;
  };
  const failed = (error, failures) => {
    if (error.status === 404 || error.status === 403) {
      setText(live, "");
      notice.replaceChildren(errorBox(error, "This release can no longer be shown"));
      return STOP;
    }
    const delay = backoff(failures);
    live.textContent = `Lost contact with the server (${error.detail || error.message}); trying again in ${delay / 1000}s…`;
    return delay;
  };
  await poll(ctx.signal, turn, { failed, whenVisible: true });
}

function ctxUser() {
  const user = session.user();
  return user ? user.name : null;
}

function summary(r) {
  return h(
    "section",
    { class: "summary", "aria-label": "Summary" },
    h(
      "ul",
      { class: "items" },
      r.items.map((i) =>
        h(
          "li",
          {},
          h("strong", { class: "mono" }, `${i.service}@${i.version}`),
          i.digest ? h("span", { class: "muted mono", title: i.digest }, ` ${shortDigest(i.digest)}`) : null,
          i.commit ? h("span", { class: "muted mono", title: i.commit }, ` commit ${i.commit.slice(0, 12)}`) : null,
        ),
      ),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Reason"),
      h("dd", { id: "release-reason", class: "reason-text" }, r.reason),
      h("dt", {}, "Author"),
      h("dd", {}, r.created_by, r.on_behalf_of ? ` for ${r.on_behalf_of}` : null),
      h("dt", {}, "Created"),
      h("dd", {}, when(r.created_at)),
      r.scheduled_at ? [h("dt", {}, "Scheduled for"), h("dd", {}, when(r.scheduled_at))] : null,
      r.finished_at ? [h("dt", {}, "Finished"), h("dd", {}, when(r.finished_at), " after ", took(r.created_at, r.finished_at))] : null,
      h("dt", {}, "Config"),
      h("dd", {}, `version ${r.config_version}`),
      r.error ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, r.error)] : null,
    ),
  );
}

function route(r) {
  const latest = new Map();
  for (const d of r.deployments || []) {
    if (d.kind !== "deploy") continue;
    const seen = latest.get(d.environment);
    if (!seen || seen.id < d.id) latest.set(d.environment, d);
  }
  const p = r.progress;
  return h(
    "section",
    { class: "route-section", "aria-labelledby": "route-title" },
    h("h2", { id: "route-title" }, "Route"),
    h(
      "ol",
      { class: "route" },
      r.environments.map((env) => {
        const d = latest.get(env);
        const here = env === r.environment && !TERMINAL.has(r.state);
        return h(
          "li",
          { class: ["stop", d ? `stop-${d.state}` : "stop-pending"], "aria-current": here ? "step" : null },
          h("span", { class: "env" }, env),
          " ",
          stateBadge(d ? d.state : "not_started"),
        );
      }),
    ),
    p
      ? h(
          "p",
          { class: "progress" },
          h("progress", { max: String(Math.max(1, p.steps_total)), value: String(p.steps_done), "aria-labelledby": "progress-text" }),
          h(
            "span",
            { id: "progress-text" },
            `${p.steps_done} of ${p.steps_total} steps, ${p.environments_done} of ${p.environments_total} environments done`,
          ),
        )
      : null,
  );
}

function deployments(r, resolver) {
  const list = r.deployments || [];
  return h(
    "section",
    { class: "deployments", "aria-labelledby": "deployments-title" },
    h("h2", { id: "deployments-title" }, "Deployments"),
    list.length
      ? list.map((d) => deployment(d, resolver))
      : empty(r.state === "scheduled" ? "Nothing has started yet: the release is scheduled." : "No deployment has started yet."),
  );
}

/** Steps that ran have output; gates only when one of their tries wrote some. */
function hasLog(s) {
  if (!s.attempt) return false;
  return s.kind === "step" || (s.attempts || []).some((a) => a.log_size > 0);
}

function deployment(d, resolver) {
  const services = Object.entries(d.services || {});
  const rows = d.steps.map((s) => {
    const name = `${d.environment}/${s.key}`;
    return h(
      "tr",
      { class: `step-${s.state}`, "data-step": name },
      h("th", { scope: "row", class: "mono" }, s.key, s.kind === "gate" ? h("span", { class: "muted" }, ` (${s.executor} gate)`) : null),
      h("td", {}, stateBadge(s.state)),
      h("td", {}, tries(s)),
      h("td", {}, s.started_at ? took(s.started_at, s.finished_at) : ""),
      h(
        "td",
        { class: "note" },
        s.error || "",
        s.state === "needs_attention" ? resolver(d, s) : null,
      ),
      h("td", {}, hasLog(s) ? h("a", { href: `/ui/steps/${s.id}/logs`, "aria-label": `Log of ${name}` }, "Log") : ""),
    );
  });
  return h(
    "article",
    { class: "deployment", "data-environment": d.environment || "" },
    h(
      "h3",
      {},
      `${d.environment || "—"}: deployment ${d.id}${d.kind === "deploy" ? "" : ` (${d.kind})`} `,
      stateBadge(d.state),
    ),
    h(
      "p",
      { class: "meta" },
      d.started_at ? ["started ", when(d.started_at)] : ["queued since ", when(d.created_at)],
      d.started_at ? [", took ", took(d.started_at, d.finished_at)] : null,
    ),
    services.length
      ? h(
          "ul",
          { class: "services", "aria-label": "Where each service stands" },
          services.map(([svc, st]) => h("li", { "data-service": svc }, h("span", { class: "mono" }, svc), " ", stateBadge(st))),
        )
      : null,
    d.error ? h("p", { class: "error-text" }, d.error) : null,
    d.steps.length
      ? table(`Steps of ${d.environment}`, ["Step", "State", "Try", "Took", "Note", "Output"], rows, { class: "steps" })
      : empty("No steps."),
  );
}

// ---- a step's log -----------------------------------------------------------

export async function log(ctx) {
  const stepId = ctx.params[0];
  const wanted = ctx.query.get("attempt");
  ctx.title(`Step ${stepId} log`);
  const heading = ctx.heading(`Log of step ${stepId}`);
  const meta = h("div", { class: "log-meta" }, loading());
  const output = h("pre", { id: "log-output", class: "log", tabindex: "0", role: "region", "aria-label": "Output" });
  const status = h("p", { id: "log-status", class: "live", role: "status" });
  const follow = h("input", { id: "log-follow", type: "checkbox", checked: true });
  ctx.main.append(
    meta,
    h("p", { class: "follow" }, follow, " ", h("label", { for: "log-follow" }, "Keep the end of the output in view")),
    output,
    status,
  );

  let step = await api(`/steps/${stepId}`, { signal: ctx.signal });
  const dep = await api(`/deployments/${step.deployment_id}`, { signal: ctx.signal });
  const name = `${dep.environment || ""}/${step.key}`;
  heading.textContent = `Log of ${name}`;
  ctx.title(`Log of ${name}`);

  let attempt = wanted ? Number(wanted) : null;
  let shownAttempt = null;
  let offset = 0;

  const drawMeta = () => {
    const releaseId = dep.release_id;
    swap(meta, [
      h(
        "p",
        {},
        stateBadge(step.state),
        step.kind === "gate" || step.attempt > step.max_attempts ? ` try ${step.attempt}` : ` attempt ${step.attempt} of ${step.max_attempts}`,
        step.started_at ? [" · started ", when(step.started_at), ", took ", took(step.started_at, step.finished_at)] : null,
        releaseId ? [" · ", h("a", { href: `/ui/releases/${releaseId}` }, `Release ${releaseId}`)] : null,
      ),
      step.error ? h("p", { class: "error-text" }, step.error) : null,
      step.attempts.length > 1
        ? h(
            "nav",
            { class: "attempts", "aria-label": "Attempts" },
            "Attempts: ",
            step.attempts.map((a) =>
              h(
                "a",
                {
                  href: `/ui/steps/${stepId}/logs${query({ attempt: a.attempt })}`,
                  "aria-current": (attempt ?? step.attempt) === a.attempt ? "page" : null,
                },
                `${a.attempt} (${a.outcome || "running"})`,
              ),
            ),
            attempt ? h("a", { href: `/ui/steps/${stepId}/logs` }, "latest") : null,
          )
        : null,
    ]);
  };
  drawMeta();

  let refresh = false; // the step is read again between two reads of its log
  const turn = async () => {
    if (refresh) {
      const fresh = await api(`/steps/${stepId}`, { signal: ctx.signal });
      refresh = false;
      if (JSON.stringify(fresh) !== JSON.stringify(step)) {
        step = fresh;
        drawMeta();
      }
    }
    const chunk = await api(`/steps/${stepId}/logs${query({ attempt, offset })}`, { signal: ctx.signal });
    if (shownAttempt !== null && chunk.attempt !== shownAttempt) {
      // A new attempt started: show it from its beginning.
      output.replaceChildren();
      offset = 0;
      shownAttempt = chunk.attempt;
      return 0;
    }
    shownAttempt = chunk.attempt;
    if (chunk.text) {
      output.append(chunk.text);
      if (follow.checked) output.scrollTop = output.scrollHeight;
    }
    offset = chunk.next_offset;
    const stepDone = STEP_DONE.has(step.state);
    if (chunk.finished && (attempt !== null || stepDone)) {
      if (!output.textContent) output.append(h("span", { class: "muted" }, "(no output)"));
      status.textContent =
        (chunk.attempt ? `Attempt ${chunk.attempt} finished` : "This step has not run") +
        (chunk.truncated ? "; the output was cut at the server's log limit." : ".");
      return STOP;
    }
    setText(
      status,
      chunk.attempt
        ? `Following attempt ${chunk.attempt}: the step is ${step.state.replaceAll("_", " ")}…`
        : `The step has not started yet (${step.state.replaceAll("_", " ")}); waiting…`,
    );
    refresh = true;
    return chunk.text ? 300 : 1000;
  };
  const failed = (error, failures) => {
    setText(status, `Could not read the log (${error.detail || error.message}); trying again…`);
    return backoff(failures);
  };
  await poll(ctx.signal, turn, { failed });
}

