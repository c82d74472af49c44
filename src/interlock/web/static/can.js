// What the signed-in person may do, so pages show only the actions that would pass.
//
// One call to /users/me/abilities per page (the rules may change with a config
// reload); the answer is a hint for drawing, never a grant: every action is
// checked again by the API when taken, and its refusal is shown as it comes.

import { api } from "./api.js";

export async function abilities(signal) {
  return api("/users/me/abilities", { signal });
}

/**
 * Whether the person may take `action`: on `services` in `environment`; with
 * `everywhere`, on an object of no one service there (a lock); with no services,
 * anything that names none (start a runbook); with no environment, on the services
 * in no one environment (block a version), or with no services either, what names
 * neither (a runbook run in no environment).
 */
export function can(found, action, { environment = null, services = [], everywhere = false } = {}) {
  if (!found) return false;
  if (found.admin) return true;
  if (environment === null) {
    if (!services.length) return found.unscoped.includes(action);
    return services.every((s) => (found.services[s] || []).includes(action));
  }
  const env = found.environments[environment];
  if (!env) return false;
  if (everywhere) return env.everywhere.includes(action);
  if (!services.length) return env.unscoped.includes(action);
  return services.every((s) => (env.services[s] || []).includes(action));
}

/** Whether the person may take `action` in some environment on some service. */
export function canAnywhere(found, action) {
  if (!found) return false;
  if (found.admin) return true;
  return Object.values(found.environments).some((env) => env.unscoped.includes(action));
}

export function serverAction(found, action) {
  return Boolean(found && (found.admin || found.server.includes(action)));
}
