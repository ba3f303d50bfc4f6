import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { escapeXml, logTicks, niceTicks, svgLinePlot } from "./svg_plot.ts";
import { checkXml } from "./xml_check.ts";

Deno.test("svg plot: well-formed, one polyline and legend entry per series, log x", () => {
  const svg = svgLinePlot({
    title: "decode tokens/s <TinyLlama & co>",
    xLabel: "context length",
    yLabel: "tokens/s",
    logX: true,
    series: [
      { name: "dense", points: [[512, 20], [4096, 12], [16384, 5]] },
      { name: "sparq:ratio=1/8", points: [[512, 21], [4096, 18], [16384, 14]] },
      { name: "bandwidth limit", points: [[512, 30], [4096, 25], [16384, 15]], dashed: true },
    ],
  });
  const names = checkXml(svg);
  assertEquals(names[0], "svg");
  assertEquals(names.filter((n) => n === "polyline").length, 3);
  for (const s of ["dense", "sparq:ratio=1/8", "bandwidth limit"]) {
    assert(svg.includes(`data-name="${s}"`), s);
    assert(svg.includes(`>${s}</text>`), s);
  }
  assert(svg.includes("&lt;TinyLlama &amp; co&gt;"));
  assert(svg.includes('stroke-dasharray="6 4"'));
  // Log-x ticks at powers of two over 512..16384, drawn left to right.
  for (const t of ["512", "1024", "2048", "4096", "8192", "16384"]) assert(svg.includes(`>${t}</text>`), t);
  const xs = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].slice(0, 3).map((m) => Number(m[1]));
  assert(xs[0] < xs[1] && xs[1] < xs[2]);
  // Equal ratios are equal distances on a log axis: 512→4096 is 3 octaves, 4096→16384 is 2.
  assert(Math.abs((xs[1] - xs[0]) / (xs[2] - xs[1]) - 1.5) < 0.01);
});

Deno.test("svg plot: empty and degenerate inputs still give a valid document", () => {
  checkXml(svgLinePlot({ xLabel: "x", yLabel: "y", series: [] }));
  checkXml(svgLinePlot({ xLabel: "x", yLabel: "y", series: [{ name: "one", points: [[3, 3]] }] }));
  const svg = svgLinePlot({
    xLabel: "x",
    yLabel: "y",
    logX: true,
    series: [{ name: "s", points: [[0, 1], [NaN, 2]] }],
  });
  checkXml(svg);
  assert(!svg.includes("NaN"));
});

Deno.test("svg plot: tick helpers", () => {
  assertEquals(niceTicks(0, 23), [0, 5, 10, 15, 20, 25]);
  assertEquals(niceTicks(0.1, 0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assertEquals(logTicks(512, 16384), [512, 1024, 2048, 4096, 8192, 16384]);
  assertEquals(logTicks(1, 1e4), [1, 10, 100, 1000, 10000]);
  assertEquals(escapeXml(`a<"&">`), "a&lt;&quot;&amp;&quot;&gt;");
  let threw = false;
  try {
    checkXml("<a><b></a></b>");
  } catch {
    threw = true;
  }
  assert(threw);
});
