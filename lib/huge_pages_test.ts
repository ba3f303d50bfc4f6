import assert from "node:assert/strict";
import { adviseHugePages, hugePagesUnavailable } from "./huge_pages.ts";
import { createRuntime } from "./wasm_runtime.ts";

Deno.test("huge pages: a shard's memory is advised (or the reason it cannot be is given)", async () => {
  const why = hugePagesUnavailable();
  if (why) {
    console.log(`  skipped: ${why}`);
    await assert.rejects(() => createRuntime({ threads: 1, hugePages: true }), new RegExp(why.slice(0, 20)));
    return;
  }
  const rt = await createRuntime({ threads: 1, hugePages: true });
  try {
    const shard = rt.newShard(16 << 20);
    // All but the unaligned ends of the 16 MiB (+1 page) memory.
    assert.ok(rt.hugePageBytes >= 12 << 20, `advised ${rt.hugePageBytes} bytes`);
    assert.ok(rt.hugePageBytes <= shard.memory.buffer.byteLength);
  } finally {
    rt.close();
  }
  // A buffer smaller than one huge page has no aligned 2 MiB inside it.
  assert.equal(adviseHugePages(new ArrayBuffer(4096)), 0);
});

Deno.test("profile --huge-pages without --allow-ffi: one line naming the flag, exit 2", async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const model = new URL("../testdata/stories260K.gguf", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-sys", cli, "profile", "-m", model, "-c", "16", "--huge-pages"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.equal(out.code, 2, err);
  assert.equal(err.split("\n").length, 1, err);
  assert.match(err, /huge|--allow-ffi|Linux/);
});
