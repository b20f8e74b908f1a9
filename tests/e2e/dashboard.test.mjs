// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core, against a gateway that served traffic in this test.
// The numbers the page renders are checked against /admin/usage, and a screenshot
// is saved under tests/e2e/artifacts/. Without Chromium the test is skipped, saying why.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { startStack, chatBody, post, readSse } from "./harness.mjs";
import { DEV_ADMIN_TOKEN, ROOT } from "../../scripts/lib/gateway.mjs";
import { RESEARCH_KEY, OPS_KEY, usageConfig, adminGet, waitForRecords } from "./usage-helpers.mjs";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `Chromium is not installed at ${CHROMIUM} (Debian package "chromium"; scripts/test installs it with apt-get where it can): the dashboard's browser test is skipped`;
if (skip) console.log(`# SKIP dashboard: ${skip}`);

let stack;

before(async () => {
  if (skip) return;
  stack = await startStack({ mocks: [{ name: "alpha" }, { name: "beta" }], makeConfig: (m) => usageConfig(m) });
  for (let i = 0; i < 3; i++) await post(stack.url, "/v1/chat/completions", chatBody("m-a"), { key: RESEARCH_KEY, headers: { "x-gateway-agent": "planner" } });
  await post(stack.url, "/v1/chat/completions", chatBody("m-b"), { key: OPS_KEY });
  const stream = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${OPS_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(chatBody("m-b", { stream: true })),
  });
  await readSse(stream);
  await waitForRecords(stack.url, 5);
});

after(async () => {
  await stack?.close();
});

test("the dashboard shows the traffic it served, in a real browser", { skip }, async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
    const failed = [];
    page.on("requestfailed", (r) => failed.push(r.url()));
    page.on("pageerror", (e) => failed.push(String(e)));

    const first = await page.goto(`${stack.url}/admin/`);
    assert.equal(first.status(), 401, "no token: the sign-in page, no data");
    await page.fill("#token", DEV_ADMIN_TOKEN);
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await page.waitForSelector("body[data-loaded=true]", { timeout: 15000 });

    const { json } = await adminGet(stack.url, "/admin/usage?group_by=team");
    const total = json.data.reduce((n, r) => n + r.requests, 0);
    assert.equal(total, 5);
    assert.equal(await page.textContent("#total-requests"), String(total));
    const cost = json.data.reduce((n, r) => n + r.cost_usd, 0);
    assert.equal(await page.textContent("#total-cost"), `$${cost.toFixed(6)}`);
    for (const row of json.data) {
      const cells = await page.$$eval(`#breakdown tr[data-group="${row.team}"] td`, (tds) => tds.map((td) => td.textContent));
      assert.deepEqual(cells.slice(0, 3), [row.team, String(row.requests), String(row.errors)], row.team);
      assert.equal(cells[6], `$${row.cost_usd.toFixed(6)}`);
    }
    // Charts: uPlot canvases with the buckets of this traffic.
    assert.equal(await page.locator("#chart-spend canvas").count(), 1);
    assert.ok(Number(await page.getAttribute("#chart-requests", "data-points")) >= 24, "every hour of the last 24");
    assert.equal(Number(await page.getAttribute("#chart-requests", "data-total")), total, "the requests chart plots them all");
    assert.equal(await page.getAttribute("#chart-requests", "data-series"), json.data.map((r) => r.team).sort().join(","));
    assert.ok(Math.abs(Number(await page.getAttribute("#chart-spend", "data-total")) - cost) < 1e-9, "and their spend");
    // Circuits and tool-call accuracy per endpoint; residency by served region.
    const endpoints = await page.textContent("#endpoints");
    assert.match(endpoints, /alpha.*alpha-model.*closed/s);
    const regions = await page.$$eval("#regions tr[data-group]", (trs) => trs.map((tr) => tr.dataset.group).sort());
    assert.deepEqual(regions, ["eu", "us"]);
    // Filters and grouping: by agent, for team research only.
    await page.selectOption("#group", "agent");
    await page.fill("#f-team", "research");
    await page.dispatchEvent("#f-team", "change");
    await page.waitForFunction(
      () => document.body.dataset.loaded === "true" && document.querySelector("#breakdown tr[data-group=planner]") && !document.querySelector('#breakdown tr[data-group="(none)"]'),
    );
    assert.equal(await page.textContent("#total-requests"), "3");
    assert.deepEqual(failed, [], "nothing failed to load: no external resources");

    const dir = path.join(ROOT, "tests/e2e/artifacts");
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, "dashboard.png"), fullPage: true });
    assert.ok(existsSync(path.join(dir, "dashboard.png")));
  } finally {
    await browser.close();
  }
});

test("the dashboard opens with the admin token as a bearer, and never without it", { skip }, async () => {
  const res = await fetch(`${stack.url}/admin/`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.ok(!/https?:\/\/(cdn|unpkg|jsdelivr)/.test(html), "no CDN");
  assert.match(html, /uplot/i);
  const wrong = await fetch(`${stack.url}/admin/`, { headers: { cookie: "gw_admin=wrong" } });
  assert.equal(wrong.status, 401);
  assert.ok(!(await wrong.text()).includes("chart-spend"));
});
