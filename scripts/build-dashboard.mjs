// Bundles the admin dashboard (dashboard/app.js with uPlot from npm, and its CSS)
// into one self-contained page, dashboard/dist/dashboard.html, which the Worker
// embeds at compile time (src/edge/dashboard.rs). No CDN: it works offline.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = await esbuild.build({
  entryPoints: [path.join(ROOT, "dashboard/app.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  write: false,
  logLevel: "error",
});
const js = out.outputFiles[0].text.replaceAll("</script", "<\\/script");
const css = readFileSync(path.join(ROOT, "node_modules/uplot/dist/uPlot.min.css"), "utf8");
const page = readFileSync(path.join(ROOT, "dashboard/index.html"), "utf8")
  .replace("/*UPLOT_CSS*/", () => css)
  .replace("/*APP_JS*/", () => js);
mkdirSync(path.join(ROOT, "dashboard/dist"), { recursive: true });
writeFileSync(path.join(ROOT, "dashboard/dist/dashboard.html"), page);
console.error(`[dashboard] dashboard/dist/dashboard.html: ${(page.length / 1024).toFixed(1)} KiB`);
