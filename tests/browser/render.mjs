// Shows job-summary pages in headless Chromium as GitHub's run page would, and measures them.
//
//   node render.mjs JOBS.json
//
// JOBS.json: {"node_modules": DIR, "width": 900, "height": 900,
//             "pages": [{"case": NAME, "html": FILE, "installables": [NAME, ...],
//                        "legs": [LEG_ID, ...], "screenshot": PNG}, ...]}
// Each page is a file the browser tier wrote: cmark-gfm's HTML of a summary inside
// <article class="markdown-body">, with github-markdown-css and mermaid 11 loaded. Here, as
// GitHub does, each ```mermaid block (cmark-gfm: <pre lang="mermaid"><code>...</code></pre>)
// becomes a diagram drawn by mermaid.run. One browser shows every page; the measurements of
// all pages are printed as one JSON object on stdout.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const jobs = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const require = createRequire(join(jobs.node_modules, "package.json"));
const { chromium } = require("playwright-core");
const mermaidVersion = require("mermaid/package.json").version;

// The flags this machine's closed network needs (docs: offline harness, "A real browser").
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Runs inside the page: the diagrams, then every measurement but the tables'.
async function drawAndMeasure({ installables, legs }) {
  const out = {
    mermaid_errors: [],
    diagrams: [],
    verdicts: {},
    leg_verdicts: {},
    console_errors: [],
  };
  const blocks = [...document.querySelectorAll('pre[lang="mermaid"]')];
  const nodes = blocks.map((pre) => {
    const div = document.createElement("div");
    div.className = "mermaid";
    div.textContent = pre.textContent; // the diagram's source, entities decoded
    pre.replaceWith(div);
    return div;
  });
  if (typeof window.mermaid === "undefined") {
    out.mermaid_errors.push("mermaid did not load");
  } else if (nodes.length) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
    try {
      await window.mermaid.run({ nodes, suppressErrors: false });
    } catch (error) {
      out.mermaid_errors.push(String(error && (error.message || error.str || error)));
    }
  }
  for (const node of nodes) {
    const svg = node.querySelector("svg");
    const role = svg ? svg.getAttribute("aria-roledescription") : null;
    // The drawn words only: an SVG's textContent starts with its <style>.
    const text = svg ? [...svg.querySelectorAll("text")].map((t) => t.textContent).join(" ") : "";
    // Mermaid's own error picture: drawn in place of a diagram it could not parse or lay out.
    if (role === "error" || text.includes("Syntax error")) {
      out.mermaid_errors.push(`error diagram drawn: ${text.trim().slice(0, 200)}`);
    }
    const box = svg ? svg.getBoundingClientRect() : null;
    out.diagrams.push({
      kind: role,
      svg_width: box ? Math.round(box.width) : null,
      svg_height: box ? Math.round(box.height) : null,
      container_width: node.clientWidth,
      // d3's axis: one g.tick per label, left to right.
      ticks: svg ? [...svg.querySelectorAll("g.tick text")].map((t) => t.textContent) : [],
      tasks: svg ? svg.querySelectorAll("rect.task").length : 0,
    });
  }

  // The verdict of each installable: its row in the Outputs table (the table after the
  // "Outputs" heading; any table with a row for it otherwise), the column that holds the verdict.
  const tables = [...document.querySelectorAll("article table")];
  const outputsTable = tables.find((table) => {
    let el = table.previousElementSibling;
    while (el && !/^H[1-6]$/.test(el.tagName)) el = el.previousElementSibling;
    return el && /outputs/i.test(el.textContent);
  });
  const verdictColumn = (table) => {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    const index = heads.findIndex((h) => /reproducib|verdict|status|result/i.test(h));
    return { index, header: index >= 0 ? heads[index] : null };
  };
  // A row's verdict cell, where it is drawn and how much of it a reader sees.
  // A leg's first cell is its id in code and what it builds after it: matched by the code.
  const firstCellKey = (cell, byCode) => {
    const code = byCode ? cell.querySelector("code") : null;
    return (code || cell).textContent.trim();
  };
  const verdictCell = (table, name, byCode = false) => {
    const rows = [...table.querySelectorAll("tbody tr")].filter(
      (tr) => tr.cells.length && firstCellKey(tr.cells[0], byCode) === name,
    );
    if (!rows.length) return null;
    const { index, header } = verdictColumn(table);
    const cell = rows[0].cells[index >= 0 ? index : rows[0].cells.length - 1];
    const rect = cell.getBoundingClientRect();
    // A table wider than its column scrolls sideways inside its own box (github-markdown-css:
    // display block, overflow auto): what lies past that box's right edge is hidden.
    const shown = table.getBoundingClientRect();
    return {
      y: Math.round(rect.top + window.scrollY),
      height: Math.round(rect.height),
      x: Math.round(rect.left + window.scrollX),
      width: Math.round(rect.width),
      visible_right: Math.round(Math.min(shown.right, window.innerWidth)),
      column: header,
      in_outputs_table: table === outputsTable,
      text: cell.textContent.trim().slice(0, 200),
      rows: rows.length,
    };
  };
  for (const name of installables) {
    let found = null;
    for (const table of outputsTable ? [outputsTable, ...tables] : tables) {
      found = verdictCell(table, name);
      if (found) break;
    }
    out.verdicts[name] = found;
  }
  // The verdict of each leg of an aggregate: its row in the legs table (the one whose first
  // column is "Leg").
  const legsTable = tables.find((table) => {
    const first = table.querySelector("thead th");
    return first && first.textContent.trim() === "Leg";
  });
  for (const id of legs) {
    out.leg_verdicts[id] = legsTable ? verdictCell(legsTable, id, true) : null;
  }
  out.page_height = document.documentElement.scrollHeight;
  out.page_width = document.documentElement.scrollWidth;
  // The words a reader sees without scrolling: every heading, paragraph, list item and table
  // cell that starts within the first screen (folds closed, as the page opens).
  out.first_screen_text = [...document.querySelectorAll("h1, h2, h3, p, li, th, td")]
    .filter((el) => el.getBoundingClientRect().top + window.scrollY < window.innerHeight)
    .map((el) => el.textContent.trim())
    .join("\n");
  return out;
}

// Runs inside the page, with every <details> open: a table in a fold is measured too.
function measureTables() {
  for (const d of document.querySelectorAll("details")) d.open = true;
  return [...document.querySelectorAll("article table")].map((table) => {
    let heading = table.previousElementSibling;
    while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
    const container = table.parentElement;
    return {
      heading: heading ? heading.textContent.trim() : null,
      header: [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim()),
      rows: table.querySelectorAll("tbody tr").length,
      scroll_width: table.scrollWidth,
      client_width: table.clientWidth,
      container: container.tagName.toLowerCase(),
      container_width: container.clientWidth,
    };
  });
}

const userDataDir = mkdtempSync(join(tmpdir(), "nca-chromium-"));
const results = { chromium: null, mermaid: mermaidVersion, pages: {} };
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ARGS,
  viewport: { width: jobs.width, height: jobs.height },
  deviceScaleFactor: 1,
  offline: true,
});
try {
  const browser = context.browser();
  results.chromium = browser ? browser.version() : null;
  for (const job of jobs.pages) {
    const page = await context.newPage();
    const consoleErrors = [];
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text().slice(0, 500));
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error).slice(0, 500)));
    const started = Date.now();
    await page.goto(pathToFileURL(job.html).href, { waitUntil: "load" });
    // Fonts (the emoji among them) are in before anything is laid out and measured.
    await page.evaluate(() => document.fonts.ready.then(() => true));
    const measured = await page.evaluate(drawAndMeasure, {
      installables: job.installables,
      legs: job.legs,
    });
    await page.screenshot({ path: job.screenshot, fullPage: true });
    // The first screen alone, as the run page opens: what a reader sees without scrolling.
    await page.screenshot({ path: job.screenshot.replace(/\.png$/, ".first-screen.png") });
    measured.tables = await page.evaluate(measureTables);
    measured.console_errors = consoleErrors;
    measured.render_ms = Date.now() - started;
    results.pages[job.case] = measured;
    await page.close();
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results) + "\n");
