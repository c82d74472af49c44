// Create a release: services and versions (registered artifacts offered), the plan and
// its expected duration shown first, then confirm.

import { api, everyItem } from "./api.js";
import { abilities, can } from "./can.js";
import { code, duration, empty, errorBox, h, loading, when } from "./dom.js";

export async function create(ctx) {
  ctx.title("New release");
  ctx.heading("New release");
  const box = h("div", {}, loading());
  ctx.main.append(box);
  const [allowed, status] = await Promise.all([abilities(ctx.signal), api("/status", { signal: ctx.signal })]);
  const environments = Object.keys(allowed.environments);
  const services = status.services.filter((s) =>
    environments.some((environment) => can(allowed, "release.create", { environment, services: [s] })),
  );
  if (!services.length) {
    box.replaceChildren(empty("You may not create releases.", "An administrator grants release.create under permissions: in interlock.yaml."));
    return;
  }
  const versions = new Map(); // service -> registered versions, newest first
  const rows = h("div", { class: "item-rows" });
  const datalists = h("div", {});
  let count = 0;

  async function offer(service, list) {
    if (!versions.has(service)) {
      versions.set(service, []);
      try {
        const found = await everyItem("/artifacts", { service, limit: 100 }, { signal: ctx.signal });
        versions.set(service, found.filter((a) => !a.blocked).map((a) => a.version));
      } catch {
        // offering versions is a courtesy; any version may be typed
      }
    }
    list.replaceChildren(...versions.get(service).map((v) => h("option", { value: v })));
  }

  function addRow() {
    count += 1;
    const n = count;
    const list = h("datalist", { id: `versions-${n}` });
    datalists.append(list);
    const service = h(
      "select",
      { id: `item-service-${n}`, name: "service", onchange: () => offer(service.value, list) },
      services.map((s) => h("option", { value: s }, s)),
    );
    const version = h("input", { id: `item-version-${n}`, name: "version", type: "text", list: list.id, spellcheck: "false", autocomplete: "off" });
    const remove = h("button", { type: "button", class: "link", "aria-label": `Remove item ${n}`, onclick: () => row.remove() }, "Remove");
    const row = h(
      "div",
      { class: "item-row", "data-item": n },
      h("div", { class: "field" }, h("label", { for: service.id }, "Service"), service),
      h("div", { class: "field" }, h("label", { for: version.id }, "Version"), version),
      n > 1 ? remove : null,
    );
    rows.append(row);
    offer(service.value, list);
    return version;
  }
  addRow();

  const envOptions = (first) => [h("option", { value: "" }, first), environments.map((e) => h("option", { value: e }, e))];
  const start = h("select", { id: "release-from", name: "from" }, envOptions("the first environment"));
  const until = h("select", { id: "release-until", name: "until" }, envOptions("the last environment"));
  const at = h("input", { id: "release-at", name: "at", type: "datetime-local" });
  const reason = h("textarea", { id: "release-reason-input", name: "reason", rows: "2", maxlength: "4000", required: true });
  const out = h("div", { id: "plan-result", "aria-live": "polite" });
  const planButton = h("button", { type: "submit", class: "primary", id: "plan-button" }, "Show the plan");

  const body = () => {
    const items = [...rows.querySelectorAll(".item-row")].map((row) => ({
      service: row.querySelector("select").value,
      version: row.querySelector("input").value.trim(),
    }));
    return { items, from: start.value || null, until: until.value || null };
  };

  let planned = null;
  const form = h(
    "form",
    {
      class: "create-release",
      "aria-label": "New release",
      onsubmit: async (event) => {
        event.preventDefault();
        out.replaceChildren();
        const wanted = body();
        const missing = wanted.items.findIndex((i) => !i.version);
        if (missing >= 0) {
          out.append(errorBox(`Version of item ${missing + 1}: this is needed.`));
          rows.querySelectorAll(".item-row input")[missing].focus();
          return;
        }
        if (!reason.value.trim()) {
          reason.setAttribute("aria-invalid", "true");
          out.append(errorBox("Reason: say why (a ticket, a sentence)."));
          reason.focus();
          return;
        }
        reason.removeAttribute("aria-invalid");
        planButton.disabled = true;
        try {
          planned = await api("/plans", { method: "POST", body: wanted, signal: ctx.signal });
          out.replaceChildren(drawPlan(planned), confirm(wanted));
          out.querySelector("#confirm-create").focus();
        } catch (error) {
          out.append(errorBox(error, "Cannot plan this release"));
        } finally {
          planButton.disabled = false;
        }
      },
    },
    h("fieldset", {}, h("legend", {}, "What goes out"), rows, datalists, h("button", { type: "button", onclick: () => addRow().focus() }, "Add a service")),
    h(
      "div",
      { class: "filters" },
      h("div", { class: "field" }, h("label", { for: start.id }, "Start at"), start),
      h("div", { class: "field" }, h("label", { for: until.id }, "Stop after"), until),
      h("div", { class: "field" }, h("label", { for: at.id }, "Start later (optional)"), at),
    ),
    h("div", { class: "field" }, h("label", { for: reason.id }, "Reason"), reason),
    h("div", { class: "buttons" }, planButton),
  );

  function confirm(wanted) {
    const result = h("div", { class: "form-result" });
    const button = h("button", { type: "button", class: "primary", id: "confirm-create" }, "Create the release");
    button.addEventListener("click", async () => {
      result.replaceChildren();
      button.disabled = true;
      try {
        const made = await api("/releases", {
          method: "POST",
          body: {
            items: planned.items.map((i) => ({ service: i.service, version: i.version, digest: i.digest })),
            reason: reason.value.trim(),
            from: wanted.from,
            until: wanted.until,
            at: at.value ? new Date(at.value).toISOString() : null,
          },
          signal: ctx.signal,
        });
        ctx.announce(`Release ${made.id} created.`);
        ctx.navigate(`/ui/releases/${made.id}`);
      } catch (error) {
        result.append(errorBox(error, "Not created"));
        button.disabled = false;
      }
    });
    return h("div", { class: "confirm" }, button, result);
  }

  box.replaceChildren(form, out);
}

function seconds(value) {
  if (value === null || value === undefined) return "unknown";
  return value === 0 ? "0s" : duration(value);
}

export function drawPlan(planned) {
  const estimate = planned.estimate;
  const byEnv = new Map(estimate.environments.map((e) => [e.environment, e]));
  return h(
    "section",
    { class: "plan", "aria-labelledby": "plan-title" },
    h("h2", { id: "plan-title" }, "Plan"),
    h(
      "p",
      {},
      "Route: ",
      planned.route.join(" → "),
      ". Expected total: ",
      h("strong", { id: "plan-total" }, seconds(estimate.total_seconds)),
      estimate.known ? ` (medians of ${planned.runs} past step runs, gates included).` : " (no step ran before: gates only).",
    ),
    h(
      "ul",
      { class: "items" },
      planned.items.map((i) => h("li", { class: "mono" }, `${i.service}@${i.version}`, i.digest ? h("span", { class: "muted" }, ` ${i.digest.slice(0, 19)}`) : " (not a registered artifact)")),
    ),
    planned.plan.environments.map((env) => {
      const found = byEnv.get(env.name);
      const gates = new Map(found.gates.map((g) => [g.key, g]));
      return h(
        "article",
        { class: "plan-env", "data-plan-env": env.name },
        h("h3", {}, `${env.name}: expected ${seconds(found.seconds)}`, found.starts_at ? h("span", { class: "muted small" }, " from ", when(found.starts_at)) : null),
        h(
          "ol",
          {},
          env.nodes.map((n) => {
            const gate = gates.get(n.key);
            return h(
              "li",
              { class: "mono" },
              n.kind === "gate" ? `gate ${n.name} (${n.executor})` : n.key,
              gate ? h("span", { class: "muted" }, `: expected wait ${seconds(gate.seconds)}, ${gate.basis}`) : null,
            );
          }),
        ),
        found.steps_without_history ? h("p", { class: "small muted" }, `${found.steps_without_history} ${found.steps_without_history === 1 ? "step" : "steps"} never ran before (counted as 0).`) : null,
      );
    }),
    h("p", { class: "small" }, "The same plan from the command line: ", code(`interlock plan ${planned.items.map((i) => `${i.service}@${i.version}`).join(" ")}`)),
  );
}
