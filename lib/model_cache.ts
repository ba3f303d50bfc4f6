/**
 * The model cache directory and model references. A model reference is a local path, an
 * `https://` URL, or `hf:OWNER/REPO/FILE.gguf` (a file of a Hugging Face repository, main branch).
 * `sparq pull` downloads URLs and `hf:` references into the cache; `resolveModelPath` maps them back
 * to the cached file so `generate -m hf:…` finds what `pull` fetched.
 *
 * Cache directory: `$SPARQ_CACHE`, else `$XDG_CACHE_HOME/sparq`, else `$HOME/.cache/sparq`
 * (`%LOCALAPPDATA%\sparq` on Windows). Layout: `hf/OWNER/REPO/FILE` and `url/HOST/PATH`.
 * Reading the environment needs `--allow-env`; plain local paths never touch it.
 * @module
 */
import { SparqError } from "./errors.ts";

/** A remote model: where to download it from and where it lives under the cache directory. */
export interface RemoteModel {
  /** The reference as the user wrote it. */
  ref: string;
  /** Download URL. */
  url: string;
  /** Path relative to the cache directory, `/`-separated. */
  cacheRelPath: string;
  /** File name (last path component). */
  fileName: string;
}

/** Reads an environment variable; a missing `--allow-env` becomes a SparqError naming the variable. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new SparqError(`reading $${name} to find the model cache needs --allow-env (see docs/PERMISSIONS.md)`);
    }
    throw e;
  }
}

/** The cache directory (not created here). */
export function cacheDir(): string {
  const explicit = env("SPARQ_CACHE");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "sparq");
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    if (local) return join(local, "sparq");
  }
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new SparqError("cannot find a cache directory: set $SPARQ_CACHE (or $XDG_CACHE_HOME or $HOME)");
  return join(home, ".cache", "sparq");
}

/** Joins path parts with `/` (accepted by Deno on every OS). */
export function join(...parts: string[]): string {
  return parts.map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p.replace(/^\/+|\/+$/g, ""))).filter((p, i) =>
    i === 0 || p !== ""
  ).join("/");
}

/** Rejects path components that could escape the cache directory. */
function safeSegments(ref: string, segments: string[]): string[] {
  for (const s of segments) {
    if (s === "" || s === "." || s === ".." || s.includes("\\") || s.includes("\0")) {
      throw new SparqError(`model reference "${ref}": bad path component "${s}"`);
    }
  }
  return segments;
}

/** True when `ref` names a remote model (`hf:` or an http(s) URL) rather than a local path. */
export function isRemoteRef(ref: string): boolean {
  return ref.startsWith("hf:") || /^https?:\/\//i.test(ref);
}

/** Parses `hf:OWNER/REPO/FILE` or an http(s) URL; anything else is a SparqError. */
export function parseRemoteRef(ref: string): RemoteModel {
  if (ref.startsWith("hf:")) {
    const parts = ref.slice(3).split("/");
    if (parts.length < 3) {
      throw new SparqError(`model reference "${ref}": expected hf:OWNER/REPO/FILE.gguf`);
    }
    const segs = safeSegments(ref, parts);
    const file = segs.slice(2).map(encodeURIComponent).join("/");
    return {
      ref,
      url: `https://huggingface.co/${encodeURIComponent(segs[0])}/${encodeURIComponent(segs[1])}/resolve/main/${file}`,
      cacheRelPath: ["hf", ...segs].join("/"),
      fileName: segs[segs.length - 1],
    };
  }
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    throw new SparqError(`model reference "${ref}": not a URL or hf:OWNER/REPO/FILE.gguf`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SparqError(`model reference "${ref}": only http(s) URLs and hf: references can be pulled`);
  }
  const path = url.pathname.split("/").filter((s) => s !== "").map(decodeURIComponent);
  if (path.length === 0) throw new SparqError(`model reference "${ref}": the URL names no file`);
  const host = url.port ? `${url.hostname}_${url.port}` : url.hostname;
  return {
    ref,
    url: url.href,
    cacheRelPath: ["url", ...safeSegments(ref, [host, ...path])].join("/"),
    fileName: path[path.length - 1],
  };
}

/** Where `pull` stores a remote model in the cache. */
export function cachedPath(remote: RemoteModel): string {
  return join(cacheDir(), remote.cacheRelPath);
}

/**
 * Maps a model reference to a local file path: local paths are returned unchanged (no I/O);
 * `hf:` references and URLs resolve to their file in the cache, and a SparqError telling the user
 * to `sparq pull` it when it is not there yet.
 */
export function resolveModelPath(ref: string): string {
  if (!isRemoteRef(ref)) return ref;
  const path = cachedPath(parseRemoteRef(ref));
  try {
    if (Deno.statSync(path).isFile) return path;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  throw new SparqError(`model ${ref} is not in the cache (${path}); download it with: sparq pull ${ref}`);
}
