import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { checksumFromHeaders, parseContentRange, pullFile } from "./pull.ts";
import { cachedPath, parseRemoteRef, resolveModelPath } from "./model_cache.ts";
import { SparqError } from "./errors.ts";
import { formatBytes, formatDuration, ProgressBar } from "./progress.ts";

/** Awaits `fn`, which must reject with a SparqError; returns it. */
async function assertRejects(fn: () => Promise<unknown>, cls: typeof SparqError): Promise<SparqError> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new Error("expected a rejection");
}

/** Deterministic pseudo-random test payload. */
function payload(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

async function sha256Hex(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

interface Logged {
  path: string;
  range: string | null;
  ifRange: string | null;
}

/** A local HTTP server; `handler` decides each response, every request is logged. */
function serve(handler: (req: Request, n: number) => Response | Promise<Response>) {
  const log: Logged[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    log.push({
      path: new URL(req.url).pathname,
      range: req.headers.get("range"),
      ifRange: req.headers.get("if-range"),
    });
    return handler(req, log.length);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { base, log, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Serves `data` honouring `Range: bytes=a-` with 206 + Content-Range, plus `extra` headers. */
function rangeResponse(req: Request, data: Uint8Array<ArrayBuffer>, extra: Record<string, string> = {}): Response {
  const m = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
  const headers: Record<string, string> = { etag: '"v1"', ...extra };
  if (m) {
    const start = Number(m[1]);
    if (start >= data.length) {
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${data.length}` } });
    }
    return new Response(data.slice(start), {
      status: 206,
      headers: { ...headers, "content-range": `bytes ${start}-${data.length - 1}/${data.length}` },
    });
  }
  return new Response(data, { headers });
}

/** A body that sends `data[0..cut)` and then fails (as a dropped connection does) or ends early. */
function truncatedStream(data: Uint8Array, cut: number, fail: boolean): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    async pull(c) {
      if (!sent) {
        sent = true;
        c.enqueue(data.slice(0, cut));
        return;
      }
      // error() drops queued chunks: give the first chunk time to reach the client.
      await new Promise((r) => setTimeout(r, 50));
      if (fail) c.error(new Error("connection dropped"));
      else c.close();
    },
  });
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("pull: full download, streamed, sha256 from X-Linked-ETag on the redirect verified", async () => {
  const data = payload(300_000);
  const sha = await sha256Hex(data);
  await using srv = serve((req) => {
    if (new URL(req.url).pathname === "/resolve/model.gguf") {
      return new Response(null, { status: 302, headers: { location: "/cdn/model.gguf", "x-linked-etag": `"${sha}"` } });
    }
    return rangeResponse(req, data);
  });
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/sub/model.gguf`;
  const r = await pullFile(`${srv.base}/resolve/model.gguf`, dest, { progress: false });
  assertEquals(r.bytes, data.length);
  assertEquals(r.checksum?.hex, sha);
  assertEquals(r.checksum?.source, "x-linked-etag");
  assertEquals(await Deno.readFile(dest), data);
  assert(!(await exists(`${dest}.part`)) && !(await exists(`${dest}.part.json`)));
  assertEquals(srv.log.map((l) => l.path), ["/resolve/model.gguf", "/cdn/model.gguf"]);
  // A second pull sees the file and does not touch the network.
  const again = await pullFile(`${srv.base}/resolve/model.gguf`, dest, { progress: false });
  assert(again.alreadyPresent);
  assertEquals(srv.log.length, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: interrupted transfer keeps the partial, the next pull resumes with Range", async () => {
  const data = payload(500_000);
  const sha = await sha256Hex(data);
  await using srv = serve((req, n) => {
    if (n === 1) {
      return new Response(truncatedStream(data, 200_000, true), {
        headers: { "content-length": String(data.length), etag: '"v1"', "x-sha256": sha },
      });
    }
    return rangeResponse(req, data, { "x-sha256": sha });
  });
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  const err = await assertRejects(() => pullFile(`${srv.base}/m.gguf`, dest, { progress: false }), SparqError);
  assert(/partial kept/.test(err.message), err.message);
  assert(!(await exists(dest)), "nothing under the final name");
  const partSize = (await Deno.stat(`${dest}.part`)).size;
  assert(partSize > 0 && partSize <= 200_000, `partial has ${partSize} bytes`);

  const r = await pullFile(`${srv.base}/m.gguf`, dest, { progress: false });
  assertEquals(srv.log[1].range, `bytes=${partSize}-`);
  assertEquals(srv.log[1].ifRange, '"v1"');
  assertEquals(r.resumedFrom, partSize);
  assertEquals(r.checksum?.source, "x-sha256"); // the hash covers the resumed prefix too
  assertEquals(await Deno.readFile(dest), data);
  assert(!(await exists(`${dest}.part`)));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: a server that ignores Range (200) restarts from zero instead of splicing", async () => {
  const data = payload(100_000);
  await using srv = serve(() => new Response(data));
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  await Deno.writeFile(`${dest}.part`, new Uint8Array(5000).fill(7));
  await Deno.writeTextFile(`${dest}.part.json`, JSON.stringify({ url: `${srv.base}/m.gguf` }));
  const r = await pullFile(`${srv.base}/m.gguf`, dest, { progress: false });
  assertEquals(srv.log[0].range, "bytes=5000-");
  assertEquals(r.resumedFrom, 0);
  assertEquals(await Deno.readFile(dest), data);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: a 206 starting at another offset is not spliced in", async () => {
  const data = payload(50_000);
  await using srv = serve((req) =>
    req.headers.get("range")
      ? new Response(data.slice(10), { status: 206, headers: { "content-range": `bytes 10-49999/50000` } })
      : new Response(data)
  );
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  await Deno.writeFile(`${dest}.part`, data.slice(0, 3000));
  await Deno.writeTextFile(`${dest}.part.json`, JSON.stringify({ url: `${srv.base}/m.gguf` }));
  const r = await pullFile(`${srv.base}/m.gguf`, dest, { progress: false });
  assertEquals(srv.log.map((l) => l.range), ["bytes=3000-", null]);
  assertEquals(r.resumedFrom, 0);
  assertEquals(await Deno.readFile(dest), data);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: 404 is a SparqError naming the URL and status, nothing written", async () => {
  await using srv = serve(() => new Response("no", { status: 404, statusText: "Not Found" }));
  const dir = await Deno.makeTempDir();
  const url = `${srv.base}/missing.gguf`;
  const err = await assertRejects(() => pullFile(url, `${dir}/x.gguf`, { progress: false }), SparqError);
  assert(err.message.includes(url) && err.message.includes("404"), err.message);
  assertEquals(err.exitCode, 2);
  assertEquals([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: body shorter than Content-Length is an error; partial kept and resumable", async () => {
  const data = payload(80_000);
  await using srv = serve((req, n) =>
    n === 1
      ? new Response(truncatedStream(data, 30_000, false), { headers: { "content-length": String(data.length) } })
      : rangeResponse(req, data)
  );
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  const err = await assertRejects(() => pullFile(`${srv.base}/m.gguf`, dest, { progress: false }), SparqError);
  assert(/of 80000 bytes/.test(err.message), err.message);
  assert(!(await exists(dest)));
  assert(await exists(`${dest}.part`));
  const r = await pullFile(`${srv.base}/m.gguf`, dest, { progress: false });
  assert(r.resumedFrom > 0);
  assertEquals(await Deno.readFile(dest), data);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: body longer than the announced length is an error; only the announced bytes are kept", async () => {
  const data = payload(40_000);
  // Content-Range announces 10,000 bytes in all; the (chunked) body carries 40,000.
  await using srv = serve(() =>
    new Response(truncatedStream(data, data.length, false), {
      status: 206,
      headers: { "content-range": "bytes 0-9999/10000" },
    })
  );
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  const err = await assertRejects(() => pullFile(`${srv.base}/m.gguf`, dest, { progress: false }), SparqError);
  assert(/more than the 10000 bytes/.test(err.message), err.message);
  assert(!(await exists(dest)));
  assertEquals((await Deno.stat(`${dest}.part`)).size, 10_000);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: checksum mismatch is an error and deletes the partial", async () => {
  const data = payload(20_000);
  const wrong = "ab".repeat(32);
  await using srv = serve((req) => rangeResponse(req, data, { etag: `"${wrong}"` }));
  const dir = await Deno.makeTempDir();
  const dest = `${dir}/m.gguf`;
  const err = await assertRejects(() => pullFile(`${srv.base}/m.gguf`, dest, { progress: false }), SparqError);
  assert(/sha256 mismatch/.test(err.message) && err.message.includes(wrong), err.message);
  assert(!(await exists(dest)) && !(await exists(`${dest}.part`)));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pull: the CLI pulls into $SPARQ_CACHE and resolveModelPath finds it", async () => {
  const data = payload(10_000);
  await using srv = serve((req) =>
    new URL(req.url).pathname === "/nope.gguf" ? new Response(null, { status: 404 }) : rangeResponse(req, data)
  );
  const cache = await Deno.makeTempDir();
  const old = Deno.env.get("SPARQ_CACHE");
  Deno.env.set("SPARQ_CACHE", cache);
  try {
    const url = `${srv.base}/models/tiny.gguf`;
    const err = (() => {
      try {
        resolveModelPath(url);
      } catch (e) {
        return e as Error;
      }
    })();
    assert(err instanceof SparqError && err.message.includes("sparq pull"), String(err));
    const { main } = await import("../cli.ts");
    assertEquals(await main(["pull", url, "--quiet"]), 0);
    const path = resolveModelPath(url);
    assert(path.startsWith(cache));
    assertEquals(await Deno.readFile(path), data);
    assertEquals(await main(["pull", `${srv.base}/nope.gguf`, "-q"]), 2);
  } finally {
    if (old === undefined) Deno.env.delete("SPARQ_CACHE");
    else Deno.env.set("SPARQ_CACHE", old);
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("model refs: hf: maps to the resolve URL and a cache path; local paths pass through", () => {
  const r = parseRemoteRef("hf:TheBloke/TinyLlama-GGUF/tinyllama.Q4_0.gguf");
  assertEquals(r.url, "https://huggingface.co/TheBloke/TinyLlama-GGUF/resolve/main/tinyllama.Q4_0.gguf");
  assertEquals(r.cacheRelPath, "hf/TheBloke/TinyLlama-GGUF/tinyllama.Q4_0.gguf");
  assertEquals(resolveModelPath("testdata/stories260K.gguf"), "testdata/stories260K.gguf");
  for (const bad of ["hf:a/b", "hf:a/../c.gguf", "ftp://x/y.gguf", "hf:a//b.gguf"]) {
    try {
      parseRemoteRef(bad);
      throw new Error(`accepted ${bad}`);
    } catch (e) {
      assert(e instanceof SparqError, `${bad}: ${e}`);
    }
  }
  Deno.env.set("SPARQ_CACHE", "/tmp/sc");
  try {
    assertEquals(cachedPath(r), "/tmp/sc/hf/TheBloke/TinyLlama-GGUF/tinyllama.Q4_0.gguf");
  } finally {
    Deno.env.delete("SPARQ_CACHE");
  }
});

Deno.test("checksum and Content-Range header parsing", () => {
  const hex = "0123456789abcdef".repeat(4);
  const b64 = btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))));
  assertEquals(checksumFromHeaders(new Headers({ etag: `"${hex}"` }))?.hex, hex);
  assertEquals(checksumFromHeaders(new Headers({ etag: `W/"${hex}"` })), undefined);
  assertEquals(checksumFromHeaders(new Headers({ etag: '"abc123"' })), undefined);
  assertEquals(checksumFromHeaders(new Headers({ digest: `MD5=xx, SHA-256=${b64}` }))?.hex, hex);
  assertEquals(checksumFromHeaders(new Headers({ "repr-digest": `sha-256=:${b64}:` }))?.hex, hex);
  assertEquals(parseContentRange("bytes 10-99/100"), { start: 10, end: 99, total: 100 });
  assertEquals(parseContentRange("bytes */100"), { start: undefined, end: undefined, total: 100 });
  assertEquals(parseContentRange("bytes 0-9/*"), { start: 0, end: 9, total: undefined });
  assertEquals(parseContentRange("junk"), undefined);
});

Deno.test("progress bar: silent off a terminal; size, speed and ETA on one", () => {
  const out: string[] = [];
  const stream = (tty: boolean) => ({
    writeSync: (b: Uint8Array) => (out.push(new TextDecoder().decode(b)), b.length),
    isTerminal: () => tty,
  });
  const quiet = new ProgressBar({ label: "m", total: 100, stream: stream(false) });
  quiet.update(50);
  quiet.finish();
  assertEquals(out.length, 0);
  let t = 0;
  const bar = new ProgressBar({ label: "m.gguf", total: 10_000_000, stream: stream(true), now: () => t });
  t = 1000;
  bar.update(2_000_000);
  assert(out[0].includes("20%") && out[0].includes("2.00 MB / 10.0 MB"), out[0]);
  assert(out[0].includes("2.00 MB/s") && out[0].includes("ETA 4s"), out[0]);
  bar.finish();
  assert(out[out.length - 1].endsWith("\n"));
  assertEquals(formatBytes(1_500_000_000), "1.50 GB");
  assertEquals(formatDuration(187), "3m07s");
});
