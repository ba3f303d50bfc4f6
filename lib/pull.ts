/**
 * Downloading a model file: streamed straight to disk with a progress bar, resumable, checksummed
 * when the server publishes a SHA-256, and atomic.
 *
 * - Bytes go to `<dest>.part`; only a complete (and, when possible, verified) file is renamed to
 *   `<dest>`, so a half-written model never appears under its final name.
 * - Resume: when `<dest>.part` exists, the request carries `Range: bytes=<size>-` (and `If-Range`
 *   with the validator saved in `<dest>.part.json`, so a file changed on the server restarts instead
 *   of being spliced). Only a `206` whose `Content-Range` starts at exactly that offset is appended;
 *   a `200` (Range ignored) or any other start restarts from zero.
 * - Checksum: a SHA-256 from `X-Linked-ETag` (Hugging Face, on the redirect), a strong `ETag` of 64
 *   hex digits, `X-Sha256`, `Digest: SHA-256=…` or `Repr-Digest: sha-256=:…:`; hashed incrementally
 *   while writing (node:crypto, so files larger than memory work). A mismatch deletes the partial.
 * - Wrong length (fewer or more bytes than announced) or a dropped connection is an error that keeps
 *   the partial for the next run to resume.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { SparqError } from "./errors.ts";
import { ProgressBar, type ProgressStream } from "./progress.ts";

/** A checksum announced by the server. */
export interface Checksum {
  algorithm: "sha256";
  /** Lower-case hex digest. */
  hex: string;
  /** Header it came from, e.g. `x-linked-etag`. */
  source: string;
}

/** Options of {@link pullFile}. */
export interface PullOptions {
  /** Progress bar output; default Deno.stderr (drawn only on a terminal). `false`: none. */
  progress?: ProgressStream | false;
  /** Label of the progress bar; default the file name. */
  label?: string;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number;
}

/** What {@link pullFile} did. */
export interface PullResult {
  /** Final path of the file. */
  path: string;
  /** Size of the file in bytes. */
  bytes: number;
  /** Bytes that were already in the `.part` file and not downloaded again (0 when not resumed). */
  resumedFrom: number;
  /** True when `path` already existed and nothing was downloaded. */
  alreadyPresent: boolean;
  /** The server's checksum, verified; undefined when the server gave none. */
  checksum?: Checksum;
}

/** Saved next to the partial so a resume can check the file has not changed on the server. */
interface PartMeta {
  url: string;
  validator?: string;
  total?: number;
}

const HEX64 = /^[0-9a-f]{64}$/i;

function base64ToHex(b64: string): string | undefined {
  try {
    const bin = atob(b64.trim());
    if (bin.length !== 32) return undefined;
    return Array.from(bin, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  } catch {
    return undefined;
  }
}

/** Extracts a SHA-256 the server announced for the whole file, if any. */
export function checksumFromHeaders(headers: Headers): Checksum | undefined {
  const strip = (v: string) => v.trim().replace(/^"|"$/g, "");
  const linked = headers.get("x-linked-etag");
  if (linked && !linked.startsWith("W/") && HEX64.test(strip(linked))) {
    return { algorithm: "sha256", hex: strip(linked).toLowerCase(), source: "x-linked-etag" };
  }
  for (const name of ["x-sha256", "x-checksum-sha256"]) {
    const v = headers.get(name);
    if (!v) continue;
    const hex = HEX64.test(strip(v)) ? strip(v).toLowerCase() : base64ToHex(strip(v));
    if (hex) return { algorithm: "sha256", hex, source: name };
  }
  // RFC 3230 `Digest: SHA-256=<b64>` and RFC 9530 `Repr-Digest: sha-256=:<b64>:` (both describe
  // the whole representation, unlike Content-Digest which covers only this response's bytes).
  for (const name of ["repr-digest", "digest"]) {
    const v = headers.get(name);
    if (!v) continue;
    for (const item of v.split(",")) {
      const eq = item.indexOf("=");
      if (eq < 0 || item.slice(0, eq).trim().toLowerCase() !== "sha-256") continue;
      const hex = base64ToHex(item.slice(eq + 1).trim().replace(/^:|:$/g, ""));
      if (hex) return { algorithm: "sha256", hex, source: name };
    }
  }
  const etag = headers.get("etag");
  if (etag && !etag.startsWith("W/") && HEX64.test(strip(etag))) {
    return { algorithm: "sha256", hex: strip(etag).toLowerCase(), source: "etag" };
  }
  return undefined;
}

/** Parses `Content-Range: bytes a-b/N` (N may be a star), or a star for the range (416 replies). */
export function parseContentRange(v: string | null): { start?: number; end?: number; total?: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return undefined;
  return {
    start: m[1] !== undefined ? Number(m[1]) : undefined,
    end: m[2] !== undefined ? Number(m[2]) : undefined,
    total: m[3] !== "*" ? Number(m[3]) : undefined,
  };
}

/** GET with redirects followed by hand, so headers of every hop (HF's X-Linked-ETag) are seen. */
async function fetchFollowing(
  url: string,
  headers: Record<string, string>,
  maxRedirects: number,
): Promise<{ res: Response; finalUrl: string; checksum?: Checksum }> {
  let checksum: Checksum | undefined;
  let current = url;
  for (let hop = 0;; hop++) {
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: "manual" });
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new SparqError(`pull ${url}: network access needs --allow-net (see docs/PERMISSIONS.md)`);
      }
      throw new SparqError(`pull ${current}: ${(e as Error).message.split("\n")[0]}`);
    }
    checksum ??= checksumFromHeaders(res.headers);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      if (hop >= maxRedirects) throw new SparqError(`pull ${url}: more than ${maxRedirects} redirects`);
      current = new URL(location, current).href;
      continue;
    }
    return { res, finalUrl: current, checksum };
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return -1;
    throw e;
  }
}

async function readMeta(path: string): Promise<PartMeta | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as PartMeta;
  } catch {
    return undefined;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Feeds the first `n` bytes of `path` to `hash` (the already-downloaded part of a resume). */
async function hashPrefix(path: string, n: number, hash: Hash): Promise<void> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  let left = n;
  while (left > 0) {
    const got = await f.read(buf.subarray(0, Math.min(buf.length, left)));
    if (got === null) break;
    hash.update(buf.subarray(0, got));
    left -= got;
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

/**
 * Downloads `url` to `dest` (see the module comment for resume, checksum and atomicity).
 * Errors are SparqErrors naming the URL: HTTP status, wrong length, checksum mismatch, network.
 */
export async function pullFile(url: string, dest: string, opts: PullOptions = {}): Promise<PullResult> {
  const existing = await fileSize(dest);
  if (existing >= 0) return { path: dest, bytes: existing, resumedFrom: 0, alreadyPresent: true };
  await Deno.mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const metaPath = `${dest}.part.json`;

  let offset = Math.max(await fileSize(part), 0);
  const meta = offset > 0 ? await readMeta(metaPath) : undefined;
  if (offset > 0 && meta?.url !== url) offset = 0; // a partial of something else: start over

  // identity: the byte counts and Range offsets must be those of the file, not of a gzip stream.
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (offset > 0) {
    headers["range"] = `bytes=${offset}-`;
    if (meta?.validator) headers["if-range"] = meta.validator;
  }
  const maxRedirects = opts.maxRedirects ?? 10;
  let { res, checksum } = await fetchFollowing(url, headers, maxRedirects);

  let total: number | undefined;
  let complete = false; // the partial already holds the whole file (416 with matching length)
  if (offset > 0 && res.status === 416) {
    const cr = parseContentRange(res.headers.get("content-range"));
    await res.body?.cancel();
    if (cr?.total === offset) {
      complete = true;
      total = offset;
    } else {
      offset = 0;
      ({ res, checksum } = await fetchFollowing(url, { "accept-encoding": "identity" }, maxRedirects));
    }
  }
  if (!complete) {
    if (!res.ok) {
      await res.body?.cancel();
      throw new SparqError(`pull ${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    }
    if (res.status === 206) {
      const cr = parseContentRange(res.headers.get("content-range"));
      if (cr?.start !== offset) {
        // A range we did not ask for: do not splice it in; fetch the whole file instead.
        await res.body?.cancel();
        offset = 0;
        ({ res, checksum } = await fetchFollowing(url, { "accept-encoding": "identity" }, maxRedirects));
        if (!res.ok || res.status === 206) {
          await res.body?.cancel();
          throw new SparqError(`pull ${url}: HTTP ${res.status} to a plain GET`);
        }
      } else {
        total = cr.total;
      }
    } else {
      offset = 0; // 200: the server ignored Range (or If-Range saw a changed file): restart
    }
    if (res.status === 200) {
      const len = res.headers.get("content-length");
      total = len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
    }
  }

  const validator = res.headers.get("etag")?.startsWith("W/")
    ? res.headers.get("last-modified") ?? undefined
    : res.headers.get("etag") ?? res.headers.get("last-modified") ?? undefined;
  const resumedFrom = offset;
  const hash = checksum ? createHash("sha256") : undefined;
  if (hash && offset > 0) await hashPrefix(part, offset, hash);

  let done = offset;
  if (!complete) {
    await Deno.writeTextFile(metaPath, JSON.stringify({ url, validator, total } satisfies PartMeta));
    const file = await Deno.open(part, offset > 0 ? { append: true } : { write: true, create: true, truncate: true });
    const label = opts.label ?? dest.slice(dest.lastIndexOf("/") + 1);
    const bar = opts.progress === false
      ? undefined
      : new ProgressBar({ label, total, start: offset, stream: opts.progress });
    try {
      const reader = res.body!.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new SparqError(
            `pull ${url}: transfer interrupted after ${done}${total !== undefined ? ` of ${total}` : ""} bytes ` +
              `(${(e as Error).message.split("\n")[0]}); partial kept in ${part}, run pull again to resume`,
          );
        }
        if (chunk.done) break;
        let bytes = chunk.value;
        if (total !== undefined && done + bytes.length > total) {
          bytes = bytes.subarray(0, total - done); // never store bytes past the announced length
          await writeAll(file, bytes);
          hash?.update(bytes);
          await reader.cancel();
          throw new SparqError(
            `pull ${url}: server sent more than the ${total} bytes it announced; ` +
              `the first ${total} are kept in ${part}`,
          );
        }
        await writeAll(file, bytes);
        hash?.update(bytes);
        done += bytes.length;
        bar?.update(done);
      }
      if (total !== undefined && done !== total) {
        throw new SparqError(
          `pull ${url}: body ended after ${done} of ${total} bytes; partial kept in ${part}, run pull again to resume`,
        );
      }
      await file.sync(); // the rename below must not publish data still in the page cache only
    } finally {
      bar?.finish();
      file.close();
    }
  }

  if (hash && checksum) {
    const got = hash.digest("hex");
    if (got !== checksum.hex) {
      await removeIfExists(part);
      await removeIfExists(metaPath);
      throw new SparqError(
        `pull ${url}: sha256 mismatch (server's ${checksum.source}: ${checksum.hex}, downloaded: ${got}); ` +
          `the partial was deleted`,
      );
    }
  }
  await Deno.rename(part, dest);
  await removeIfExists(metaPath);
  return { path: dest, bytes: done, resumedFrom, alreadyPresent: false, checksum };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}
