// Environments and services: what runs, drift, history; lock and unlock an environment;
// block and unblock a version.

import { api, everyItem, query } from "./api.js";
import { abilities, can } from "./can.js";
import { empty, h, loading, shortDigest, stateBadge, swap, table, took, when } from "./dom.js";
import { actionForm, folded } from "./forms.js";
import { follow } from "./live.js";

function running(entries) {
  return entries.map((e) =>
    h(
      "tr",
      { "data-runs": `${e.service}/${e.environment}` },
      h("td", {}, h("a", { href: `/ui/services/${encodeURIComponent(e.service)}` }, e.service)),
      h("td", {}, h("a", { href: `/ui/environments/${encodeURIComponent(e.environment)}` }, e.environment)),
      h("td", { class: "mono" }, e.version),
      h("td", {}, e.deployed_by, ", ", when(e.deployed_at)),
      h("td", {}, e.release_id ? h("a", { href: `/ui/releases/${e.release_id}` }, `release ${e.release_id}`) : "—"),
      h("td", { class: e.drift ? "drift" : null }, e.drift ? `drift: observed ${e.observed_version || "?"}` : e.observed_version ? "matches" : "not observed"),
    ),
  );
}

const RUNS = ["Service", "Environment", "Version", "Deployed", "Release", "Observed"];

// ---- environments ----------------------------------------------------------------

export async function environments(ctx) {
  ctx.title("Environments");
  ctx.heading("Environments");
  ctx.main.append(h("p", { class: "lead" }, "The promotion chain, in order: who locked what, and what runs where."));
  const box = h("div", { id: "environments" }, loading());
  ctx.main.append(box);
  const load = async () => {
    const [status, locks] = await Promise.all([api("/status", { signal: ctx.signal }), api("/environments/locks", { signal: ctx.signal })]);
    return { status, locks };
  };
  const draw = ({ status, locks }) => {
    const locked = new Map(locks.map((l) => [l.environment, l]));
    const rows = status.environments.map((env) => {
      const lock = locked.get(env);
      const here = status.entries.filter((e) => e.environment === env);
      return h(
        "tr",
        { "data-environment": env },
        h("th", { scope: "row" }, h("a", { href: `/ui/environments/${encodeURIComponent(env)}` }, env)),
        h("td", {}, lock ? [h("strong", {}, "locked"), ` by ${lock.locked_by}: ${lock.reason}`] : "open"),
        h("td", {}, `${here.length} services`, here.some((e) => e.drift) ? h("strong", { class: "drift-flag" }, " (drift)") : null),
      );
    });
    return table("Environments", ["Environment", "Lock", "Runs"], rows);
  };
  await follow(ctx, box, load, draw);
}

export async function environment(ctx) {
  const name = decodeURIComponent(ctx.params[0]);
  ctx.title(`Environment ${name}`);
  ctx.heading(`Environment ${name}`);
  const allowed = await abilities(ctx.signal);
  const notice = h("div", { class: "notice", "aria-live": "polite" });
  const lockBox = h("section", { "aria-labelledby": "lock-title", id: "lock" });
  const runs = h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "What runs here"), h("div", { id: "runs" }, loading()));
  const history = h("section", { "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, "History"), h("div", { id: "history" }, loading()));
  ctx.main.append(notice, lockBox, runs, history);
  const mayLock = can(allowed, "lock", { environment: name, everywhere: true });

  const lockForm = actionForm({
    id: "lock-form",
    label: `Lock ${name}`,
    signal: ctx.signal,
    fields: [{ name: "reason", label: "Why lock it?", type: "text", required: true }],
    button: `Lock ${name}`,
    danger: true,
    submit: async (found) => {
      await api(`/environments/${encodeURIComponent(name)}/lock`, { method: "POST", body: found, signal: ctx.signal });
      ctx.announce(`${name} is locked.`);
      await reload();
      return null;
    },
  });
  const unlockForm = actionForm({
    id: "unlock-form",
    label: `Unlock ${name}`,
    signal: ctx.signal,
    button: `Unlock ${name}`,
    submit: async () => {
      await api(`/environments/${encodeURIComponent(name)}/lock`, { method: "DELETE", signal: ctx.signal });
      ctx.announce(`${name} is unlocked.`);
      await reload();
      return null;
    },
  });

  const load = async () => {
    const [status, locks, deployments] = await Promise.all([
      api("/status", { signal: ctx.signal }),
      api("/environments/locks", { signal: ctx.signal }),
      api(`/deployments${query({ environment: name, limit: 50 })}`, { signal: ctx.signal }),
    ]);
    return { status, lock: locks.find((l) => l.environment === name) || null, deployments: deployments.items };
  };
  const draw = ({ status, lock, deployments }) => {
    swap(lockBox, [
      h("h2", { id: "lock-title" }, "Lock"),
      h("p", { id: "lock-state" }, lock ? [h("strong", {}, "Locked"), ` by ${lock.locked_by} since `, when(lock.locked_at), `: ${lock.reason}. Queued and new deployments wait.`] : "Open: deployments start as they come."),
      mayLock ? (lock ? unlockForm : lockForm) : null,
    ]);
    const here = status.entries.filter((e) => e.environment === name);
    swap(runs.querySelector("#runs"), here.length ? table(`What runs in ${name}`, RUNS, running(here)) : empty("Nothing deployed here yet."));
    swap(
      history.querySelector("#history"),
      deployments.length
        ? table(
            `Deployments to ${name}, newest first`,
            ["Deployment", "Kind", "State", "Release", "By", "Started", "Took"],
            deployments.map((d) =>
              h(
                "tr",
                {},
                h("td", { class: "mono" }, String(d.id)),
                h("td", {}, d.kind),
                h("td", {}, stateBadge(d.state)),
                h("td", {}, d.release_id ? h("a", { href: `/ui/releases/${d.release_id}` }, `release ${d.release_id}`) : "—"),
                h("td", {}, d.created_by),
                h("td", {}, when(d.started_at || d.created_at)),
                h("td", {}, d.started_at ? took(d.started_at, d.finished_at) : ""),
              ),
            ),
          )
        : empty("No deployment here yet."),
    );
  };
  let reload = async () => draw(await load());
  await follow(ctx, history, load, draw, true, { replace: false });
}

// ---- services -------------------------------------------------------------------

export async function service(ctx) {
  const name = decodeURIComponent(ctx.params[0]);
  ctx.title(`Service ${name}`);
  ctx.heading(`Service ${name}`);
  const allowed = await abilities(ctx.signal);
  const mayBlock = can(allowed, "rollback", { services: [name] });
  const runs = h("div", { id: "runs" }, loading());
  const versions = h("div", { id: "versions" }, loading());
  const releases = h("div", { id: "service-releases" }, loading());
  ctx.main.append(
    h("section", { "aria-labelledby": "where-title" }, h("h2", { id: "where-title" }, "Where it runs"), runs),
    h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, "Registered versions"), versions),
    h("section", { "aria-labelledby": "releases-title" }, h("h2", { id: "releases-title" }, "Releases"), releases),
  );
  const forms = new Map();
  const blockForm = (a) => {
    const key = `${a.blocked ? "unblock" : "block"}/${a.version}`;
    if (!forms.has(key)) {
      const verb = a.blocked ? "unblock" : "block";
      forms.set(
        key,
        folded(
          `${a.blocked ? "Unblock" : "Block"} ${a.version}…`,
          actionForm({
            id: `${verb}-${a.id}`,
            label: `${verb} ${name}@${a.version}`,
            signal: ctx.signal,
            fields: [{ name: "reason", label: `Why ${verb} it?`, type: "text", required: true }],
            button: a.blocked ? "Unblock" : "Block this version",
            danger: !a.blocked,
            submit: async (found) => {
              await api(`/artifacts/${encodeURIComponent(name)}/${encodeURIComponent(a.version)}/${verb}`, { method: "POST", body: found, signal: ctx.signal });
              ctx.announce(`${name}@${a.version} ${verb}ed.`);
              await reload();
              return null;
            },
          }),
        ),
      );
    }
    return forms.get(key);
  };
  const load = async () => {
    const [status, artifacts, list] = await Promise.all([
      api("/status", { signal: ctx.signal }),
      everyItem("/artifacts", { service: name, limit: 100 }, { signal: ctx.signal }).catch(() => []),
      api(`/releases${query({ service: name, limit: 25 })}`, { signal: ctx.signal }),
    ]);
    return { entries: status.entries.filter((e) => e.service === name), artifacts: artifacts.slice(0, 50), releases: list.items };
  };
  const draw = ({ entries, artifacts, releases: found }) => {
    swap(runs, entries.length ? table(`Where ${name} runs`, RUNS, running(entries)) : empty("Not deployed anywhere yet."));
    swap(
      versions,
      artifacts.length
        ? table(
            `Versions of ${name}`,
            ["Version", "Digest", "Commit", "Registered", "Blocked", mayBlock ? "Action" : null].filter(Boolean),
            artifacts.map((a) =>
              h(
                "tr",
                { "data-version": a.version },
                h("td", { class: "mono" }, a.version),
                h("td", { class: "mono", title: a.digest || "" }, shortDigest(a.digest)),
                h("td", { class: "mono" }, (a.commit || "").slice(0, 12)),
                h("td", {}, when(a.registered_at || a.created_at)),
                h("td", {}, a.blocked ? `blocked: ${a.block_reason || ""}` : "no"),
                mayBlock ? h("td", {}, blockForm(a)) : null,
              ),
            ),
          )
        : empty("No registered versions.", "CI registers builds with interlock artifact register."),
    );
    swap(
      releases,
      found.length
        ? table(
            `Releases of ${name}`,
            ["Release", "State", "Versions", "Author", "Created"],
            found.map((r) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `/ui/releases/${r.id}` }, `#${r.id}`)),
                h("td", {}, stateBadge(r.state)),
                h("td", { class: "mono" }, r.items.map((i) => `${i.service}@${i.version}`).join(", ")),
                h("td", {}, r.created_by),
                h("td", {}, when(r.created_at)),
              ),
            ),
          )
        : empty("No releases yet."),
    );
  };
  let reload = async () => draw(await load());
  await follow(ctx, releases, load, draw, true, { replace: false });
}
