// Small labelled forms for actions: every field has a label, the result or the
// API's refusal shows under the button, and the button is off while a call runs.

import { isAbort } from "./api.js";
import { errorBox, h } from "./dom.js";

/**
 * A field: {name, label, type: text|textarea|select|checkbox|number|datetime-local,
 * options: [[value, text]...], required, value, hint, list}.
 */
function field(base, f) {
  const id = `${base}-${f.name}`;
  const hintId = f.hint ? `${id}-hint` : null;
  let input;
  if (f.type === "textarea") {
    input = h("textarea", { id, name: f.name, rows: "2", maxlength: "4000", required: f.required, "aria-describedby": hintId });
    if (f.value) input.value = f.value;
  } else if (f.type === "select") {
    input = h(
      "select",
      { id, name: f.name, required: f.required, "aria-describedby": hintId },
      (f.options || []).map(([value, text]) => h("option", { value, selected: value === f.value }, text)),
    );
  } else if (f.type === "checkbox") {
    input = h("input", { id, name: f.name, type: "checkbox", checked: Boolean(f.value), "aria-describedby": hintId });
    return h("div", { class: "field field-check" }, input, " ", h("label", { for: id }, f.label), f.hint ? h("p", { id: hintId, class: "hint" }, f.hint) : null);
  } else {
    input = h("input", {
      id,
      name: f.name,
      type: f.type || "text",
      required: f.required,
      value: f.value ?? null,
      list: f.list || null,
      spellcheck: "false",
      autocomplete: "off",
      maxlength: f.type === "text" || !f.type ? "4000" : null,
      "aria-describedby": hintId,
    });
  }
  return h("div", { class: "field" }, h("label", { for: id }, f.label), input, f.hint ? h("p", { id: hintId, class: "hint" }, f.hint) : null);
}

/** Read a form's fields into an object (checkboxes as booleans, text trimmed). */
export function values(form) {
  const out = {};
  for (const el of form.querySelectorAll("input, select, textarea")) {
    if (!el.name) continue;
    out[el.name] = el.type === "checkbox" ? el.checked : String(el.value).trim();
  }
  return out;
}

/**
 * A form that calls `submit(values, form)`; what it resolves to (a node or text)
 * is shown as the result. Required fields left empty are named before any call.
 */
export function actionForm({ id, label, fields = [], button, danger = false, submit, signal, intro = null }) {
  const out = h("div", { class: "form-result", id: `${id}-result` });
  const go = h("button", { type: "submit", class: danger ? "danger" : "primary", id: `${id}-submit` }, button);
  const form = h(
    "form",
    {
      id,
      class: "action-form",
      "aria-label": label,
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        out.replaceChildren();
        const found = values(form);
        const missing = fields.find((f) => f.required && f.type !== "checkbox" && !found[f.name]);
        if (missing) {
          const el = form.querySelector(`[name="${missing.name}"]`);
          el.setAttribute("aria-invalid", "true");
          out.append(errorBox(`${missing.label}: this is needed.`));
          el.focus();
          return;
        }
        for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
        go.disabled = true;
        try {
          const shown = await submit(found, form);
          if (shown) out.append(typeof shown === "string" ? h("p", { class: "ok", role: "status" }, shown) : shown);
        } catch (error) {
          if (isAbort(error) || (signal && signal.aborted)) return;
          out.append(errorBox(error, "Refused"));
        } finally {
          go.disabled = false;
        }
      },
    },
    intro,
    fields.map((f) => field(id, f)),
    h("div", { class: "buttons" }, go),
    out,
  );
  return form;
}

/** A form folded away under a summary (the page stays readable; the keyboard opens it). */
export function folded(summary, form, attrs = {}) {
  return h("details", { class: "action", ...attrs }, h("summary", {}, summary), form);
}
