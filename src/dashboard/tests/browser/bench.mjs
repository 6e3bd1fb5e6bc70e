// Times the dashboard in headless Chromium with a large fleet: each view's first load,
// a refresh tick, heatmap scrolling, and the DOM size. Prints one JSON object.
import path from "node:path";
import { pathToFileURL } from "node:url";

const { DASH_URL, NORDIQ_NODE_MODULES } = process.env;
const { chromium } = await import(pathToFileURL(path.join(NORDIQ_NODE_MODULES, "playwright-core", "index.mjs")).href);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const result = { views: {} };
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("pageerror", (e) => errors.push(String(e)));
const ready = {
  overview: () => document.querySelectorAll("#top tr").length > 1,
  heatmap: () => document.getElementById("heat").width > 200,
  alerts: () => document.querySelectorAll("#alert-counts .card").length === 3,
  models: () => document.querySelectorAll("#model-info tr").length > 3,
};
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, fn] of Object.entries(ready)) {
  const t0 = Date.now();
  await page.goto(`${DASH_URL}/#${name}`);
  await page.waitForFunction(fn, null, { timeout: 60000 });
  const load = Date.now() - t0;
  const ticks = [];
  for (let i = 0; i < 5; i++) ticks.push(await page.evaluate(async () => { const t = performance.now(); await render(); return performance.now() - t; }));
  const nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
  result.views[name] = { first_load_ms: load, refresh_tick_ms: median(ticks), dom_nodes: nodes };
}
await page.goto(`${DASH_URL}/#heatmap`);
await page.waitForFunction(ready.heatmap, null, { timeout: 60000 });
result.heatmap_rows = await page.evaluate(() => heat.rows.length);
result.heatmap_scroll_frame_ms = await page.evaluate(() => {
  const s = document.getElementById("heat-scroll");
  const times = [];
  for (let i = 0; i < 50; i++) {
    s.scrollTop = (i * 397) % (s.scrollHeight - s.clientHeight);
    const t = performance.now();
    drawHeat();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[25];
});
const first = await page.evaluate(() => heat.rows[0].name);
const t0 = Date.now();
await page.goto(`${DASH_URL}/#server/${encodeURIComponent(first)}`);
try {
  await page.waitForFunction(() => document.querySelectorAll("#server-charts .chart").length > 0, null, { timeout: 60000 });
  result.views.server = { first_load_ms: Date.now() - t0 };
} catch (e) {
  result.views.server = { error: await page.$eval("#banner", (b) => b.textContent), errors };
}
await browser.close();
console.log(JSON.stringify(result));
