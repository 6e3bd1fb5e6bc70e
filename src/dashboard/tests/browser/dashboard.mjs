// Drives the dashboard in headless Chromium (Debian's, through playwright-core) and checks
// each view against the daemon's own API. Run by tests/browser.rs; exits non-zero with the
// list of problems. Screenshots go to $OUT_DIR.
import path from "node:path";
import { pathToFileURL } from "node:url";

const { DASH_URL, API_URL, API_KEY, OUT_DIR, NORDIQ_NODE_MODULES } = process.env;
const modules = NORDIQ_NODE_MODULES;
if (!modules) {
  console.error("NORDIQ_NODE_MODULES is not set (scripts/test.sh sets it after installing playwright-core)");
  process.exit(2);
}
const { chromium } = await import(pathToFileURL(path.join(modules, "playwright-core", "index.mjs")).href);

const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };
const daemon = async (p) => {
  const r = await fetch(API_URL + p, { headers: { "X-API-Key": API_KEY } });
  if (!r.ok) throw new Error(`${p}: ${r.status}`);
  return r.json();
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

async function view(name, ready) {
  const before = consoleErrors.length;
  await page.goto(`${DASH_URL}/#${name}`);
  try {
    await page.waitForFunction(ready, null, { timeout: 20000 });
  } catch (e) {
    problems.push(`${name}: did not show its content (${e.message.split("\n")[0]})`);
  }
  await page.screenshot({ path: path.join(OUT_DIR, `${name.replace(/\W/g, "_")}.png`), fullPage: true });
  const banner = await page.$eval("#banner", (b) => (b.hidden ? "" : b.textContent));
  check(!banner, `${name}: error banner: ${banner}`);
  check(consoleErrors.length === before, `${name}: console errors: ${consoleErrors.slice(before).join(" | ")}`);
}

const current = await daemon("/predictions/current");
const names = Object.keys(current.servers);
check(names.length > 0, "the daemon forecasts no server");
const catalog = 14;

// Overview: KPIs, the outlook, the risk distribution, the top servers by name.
await view("overview", () => document.querySelectorAll("#kpis .card").length >= 8 && document.querySelectorAll("#top tr").length > 1);
const overviewText = await page.textContent("#view-overview");
check(names.some((n) => overviewText.includes(n)), "overview: no server name shown");
check(/incident within 30 min/.test(overviewText) && /incident within 8 h/.test(overviewText), "overview: no incident probability within 30 min and 8 h");
// The outlook is the daemon's environment block, not the dashboard's own sum.
const env = current.environment;
check(env && env.horizons_minutes.join() === "30,480", `overview: environment horizons ${env && env.horizons_minutes}`);
const pctText = (p) => (p * 100).toFixed(p < 0.01 && p > 0 ? 2 : 1) + " %";
const outlookCards = await page.$$eval("#kpis .card", (cs) => cs.map((c) => [c.querySelector(".label").textContent, c.querySelector(".value").textContent]));
const within8h = outlookCards.find(([l]) => l === "incident within 8 h");
check(within8h && within8h[1] === pctText(env.fleet[1].probability_any), `overview: 8 h card ${within8h} vs API ${env.fleet[1].probability_any}`);
check(env.fleet[1].probability_any >= env.fleet[0].probability_any, "API: within 8 h is less likely than within 30 min");
const anomalousCard = outlookCards.find(([l]) => l === "anomalous now");
const anomalousApi = Object.values(current.servers).filter((s) => s.anomaly.anomalous).length;
check(anomalousCard && Number(anomalousCard[1]) === anomalousApi, `overview: anomalous ${anomalousCard} vs API ${anomalousApi}`);
check((await page.$$("#anomalous tr.anomaly-row")).length === Math.min(anomalousApi, 10), "overview: anomalous list differs from the API");
const serverCard = await page.$eval("#kpis .card .value", (e) => e.textContent);
check(Number(serverCard) === names.length, `overview: ${serverCard} servers shown, the API has ${names.length}`);
check((await page.$$("#histogram svg rect")).length === 10, "overview: no risk histogram");

// Heatmap: one column per metric, a drawn canvas.
await view("heatmap", () => document.querySelectorAll("#heat-head span").length > 0 && document.getElementById("heat").width > 200);
check((await page.$$("#heat-head span")).length === catalog, "heatmap: not one column per metric");
const painted = await page.$eval("#heat", (c) => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, Math.min(c.height, 100)).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
});
check(painted > 1000, `heatmap: canvas nearly empty (${painted} pixels)`);

// Server: a chart per metric with history, the median and the p10–p90 band.
const server = names[0];
// The explanation arrives after the charts (its own request): wait for it or for its reason.
await view(`server/${encodeURIComponent(server)}`, () => document.querySelectorAll("#server-charts .chart").length > 0
  && document.querySelector("#explain .bars, #explain p.muted:not(.loading)") !== null);
check((await page.$$("#server-charts .chart")).length === catalog, "server: not one chart per metric");
const bands = await page.$$eval("#server-charts path.band", (ps) => ps.filter((p) => (p.getAttribute("d") || "").length > 20).length);
check(bands >= catalog - 2, `server: ${bands} forecast bands drawn`);
const hist = await page.$$eval("#server-charts path.hist", (ps) => ps.filter((p) => (p.getAttribute("d") || "").length > 20).length);
check(hist >= catalog - 2, `server: ${hist} history lines drawn`);
check((await page.textContent("#server-head")).includes("forecast by"), "server: no header");
check(/anomaly/.test(await page.textContent("#server-head")), "server: no anomaly score in the header");
// The threshold the daemon holds this server to (the model's calibrated one where it serves).
const threshold = `threshold ${current.servers[server].anomaly.threshold.toFixed(2)}`;
check((await page.textContent("#server-head")).includes(threshold), `server: the header lacks "${threshold}"`);
const footers = await page.$$eval("#server-charts .chart .muted", (fs) => fs.filter((f) => /anomaly/.test(f.textContent)).length);
check(footers === catalog, `server: ${footers} charts show an anomaly score`);
if (current.servers[server].method === "tft") {
  const bars = await page.$$("#explain .bars .fill");
  const said = (await page.textContent("#explain")).slice(0, 200);
  check(bars.length >= 10, `server: ${bars.length} variable-importance bars (the panel says: ${said})`);
  check((await page.$$("#explain svg rect")).length > 5, "server: no attention chart");
} else {
  problems.push(`server: ${server} is forecast by ${current.servers[server].method}, not the model`);
}

// Alerts: the counts are the API's.
const alerts = await daemon("/alerts/active");
await view("alerts", () => document.querySelectorAll("#alert-counts .card").length === 3);
for (const level of ["critical", "warning", "watch"]) {
  const shown = await page.$eval(`#alert-counts [data-level=${level}] .value`, (e) => e.textContent);
  check(Number(shown) === alerts.levels[level], `alerts: ${level} shows ${shown}, the API says ${alerts.levels[level]}`);
}
check((await page.$$("#alert-table tr.alert-row")).length === alerts.alerts.length, "alerts: table rows differ from the API's alerts");
check(Array.isArray(alerts.anomalies), "API: /alerts/active has no anomalies list");
check((await page.$$("#anomaly-table tr.anomaly-row")).length === alerts.anomalies.length, "alerts: anomaly rows differ from the API's anomalies");

// Models & training: what serves, per the API.
const info = await daemon("/admin/model-info");
// The view renders what serves, then asks for the training job: wait for both.
await view("models", () => document.querySelectorAll("#model-info tr").length > 3 && document.querySelector("#job").textContent.length > 0);
check((await page.textContent("#model-info")).includes(info.serving), `models: serving ${info.serving} not shown`);
check((await page.textContent("#model-info")).includes(info.anomaly_threshold_reason), "models: the anomaly threshold's reason is not shown");
check((await page.textContent("#job")).length > 0, "models: no training status");
check(info.live && info.live.day && info.live.week && info.live.baseline.startsWith("baseline:"), "API: model-info has no live accuracy");
check((await page.$$("#live tr.live-row")).length === 4, "models: live accuracy is not 2 spans × 2 forecasters");
check((await page.textContent("#live")).includes(info.live.baseline), `models: live baseline ${info.live.baseline} not shown`);
const driftText = await page.textContent("#drift");
check(/No drift at the latest check|Drifting since|Not checked yet/.test(driftText), `models: no drift state (${driftText})`);

// Historical: a chart from the buffer, and a CSV that starts with the header.
await view("historical", () => document.querySelector("#hist-chart svg path.hist") !== null);
check(/\d+ samples/.test(await page.textContent("#hist-note")), "historical: no sample count");
const href = await page.$eval("#hist-csv", (a) => a.getAttribute("href"));
const csv = await (await fetch(DASH_URL + href)).text();
check(csv.startsWith("timestamp,server_name,profile,cpu_user_pct"), `historical: CSV starts with ${csv.slice(0, 60)}`);
check(csv.split("\n").length > 10, "historical: CSV has almost no rows");

// Scenario buttons (a simulator stand-in is configured): a click reaches it and its answer shows.
await page.goto(`${DASH_URL}/#overview`);
await page.waitForFunction(() => !document.getElementById("scenario").hidden, null, { timeout: 10000 });
await page.click("[data-scenario=degrading]");
await page.waitForFunction(() => document.getElementById("scenario-status").textContent.includes("degrading"), null, { timeout: 10000 })
  .catch(() => problems.push("scenario: the simulator's status does not show the new scenario"));

// The refresh interval offers 5 s – 5 min and defaults to 30 s.
const options = await page.$$eval("#refresh option", (os) => os.map((o) => Number(o.value)));
check(options[0] === 5 && options[options.length - 1] === 300, `refresh options ${options}`);
check((await page.$eval("#refresh", (s) => s.value)) === "30", "refresh default is not 30 s");

// The key never reaches the browser.
const html = await page.content();
check(!html.includes(API_KEY), "the API key appears in the page");

await browser.close();
if (problems.length) {
  console.error("dashboard problems:\n- " + problems.join("\n- "));
  process.exit(1);
}
console.log(`dashboard: 6 views checked in Chromium, ${names.length} servers, screenshots in ${OUT_DIR}`);
