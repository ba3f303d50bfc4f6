/**
 * Optional tuning and debugging environment variables (`SPARQ_GPU_*`, see README "Environment variables").
 * @module
 */

/**
 * The value of environment variable `name` when env access to it is already granted, else undefined. It
 * never prompts: a tuning knob must not stop a run with a permission question, and a run without
 * `--allow-env` simply uses the defaults.
 */
export function tuningEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return undefined;
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
