/**
 * `npm run bench:dashboard`: measures the dashboard page as a phone user and a desktop
 * user get it, in a healthy and an incident state (issue 14). For each state it seeds a
 * fresh database, starts the built `sentinel serve` on it, waits for a finished run and
 * opens the page in Debian's Chromium (playwright-core; no browser is downloaded) at
 * 390x844 (deviceScaleFactor 3, mobile, touch) and 1280x900, then reports:
 *
 * - axe-core violations (WCAG 2.1 A/AA tags) by impact, serious + critical listed by rule;
 * - the document's scrollWidth against the viewport's width;
 * - Largest Contentful Paint at 390 px with 4x CPU throttling (CDP), median of 5 fresh loads;
 * - the page's JS: raw and gzip bytes of dist/web/assets/*.js.
 *
 *   node dist-bench/bench/dashboard.js [--label before] [--screenshots docs/images/dashboard-before] [--first-screen]
 *                                      [--loads 5] [--database-url postgres://postgres@127.0.0.1:5432/postgres]
 *
 * With --screenshots PREFIX it saves PREFIX-{phone,desktop}-{healthy,incident}.png
 * (phone: full page at deviceScaleFactor 2; desktop: full page at 1; with --first-screen
 * only what the viewport shows without scrolling). Prints a table on
 * stderr and the figures as JSON on stdout; writes bench/results/dashboard-<label>.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import AxeBuilder from '@axe-core/playwright';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { INCIDENT_CONFIG, seedDashboard } from '../test/e2e/seed.js';
import { createDatabase, dropDatabase, formatTable, log, withClient, withDatabase } from './lib.js';
import {
  CLI,
  DEFAULT_DATABASE_URL,
  median,
  REPO_ROOT,
  runCli,
  runMain,
  sentinelEnv,
  stopChild,
  tempDir,
} from './lib-proc.js';

const CHROMIUM = process.env.SENTINEL_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

export const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 3,
  isMobile: true,
  hasTouch: true,
};
export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } };

const MAX_SCREENSHOT_BYTES = 400_000;

type State = 'healthy' | 'incident';
type Width = 'phone' | 'desktop';

interface Served {
  url: string;
  child: ChildProcess;
}

/** `sentinel serve` on `databaseUrl`; resolves once the API reports a finished run. */
async function serve(databaseUrl: string, stateDir: string, configFile?: string): Promise<Served> {
  const env = sentinelEnv(databaseUrl, stateDir);
  if (configFile) env.SENTINEL_CONFIG = configFile;
  const child = spawn(process.execPath, [CLI, 'serve', '--interval', '5', '--listen', '127.0.0.1:0'], {
    env,
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /Listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]!.replace(/\/$/, ''));
    });
    child.once('exit', (code) => reject(new Error(`sentinel serve exited with ${code}: ${stderr.slice(-500)}`)));
  });
  for (;;) {
    const res = await fetch(`${url}/api/status`);
    const body = (await res.json()) as { last_run_at: string | null };
    if (body.last_run_at) break;
    // The loop's first run is under way (a run takes well under a second here).
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child };
}

/** Opens the page and waits until it shows a status from the API and has loaded everything. */
async function load(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('[data-testid="overall-status"]:not([data-status="unknown"])');
  await page.waitForLoadState('networkidle');
}

export interface AxeFigures {
  critical: number;
  serious: number;
  moderate: number;
  minor: number;
  /** `rule (impact) × nodes` of the serious and critical violations. */
  rules: string[];
}

async function axe(page: Page): Promise<AxeFigures> {
  const result = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
  const count = (impact: string) =>
    result.violations.filter((v) => v.impact === impact).reduce((n, v) => n + v.nodes.length, 0);
  return {
    critical: count('critical'),
    serious: count('serious'),
    moderate: count('moderate'),
    minor: count('minor'),
    rules: result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}) x${v.nodes.length}`),
  };
}

export interface OverflowFigures {
  scrollWidth: number;
  viewportWidth: number;
  /** Elements whose right edge lies beyond the viewport, outside any horizontal scroll container. */
  overflowing: number;
}

async function overflow(page: Page): Promise<OverflowFigures> {
  // The configured width, not innerWidth: a mobile browser widens its layout viewport
  // (and zooms out) to fit content that overflows, so innerWidth grows with the bug.
  return page.evaluate((width) => {
    const insideScroller = (el: Element): boolean => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
      }
      return false;
    };
    let overflowing = 0;
    for (const el of Array.from(document.body.querySelectorAll('*'))) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 0.5 && !insideScroller(el)) overflowing++;
    }
    return { scrollWidth: document.documentElement.scrollWidth, viewportWidth: width, overflowing };
  }, page.viewportSize()!.width);
}

/** LCP (ms) of one fresh load at 390 px with the CPU slowed down 4x, and which element it was. */
async function lcpOnce(browser: Browser, url: string): Promise<{ ms: number; element: string }> {
  const context = await browser.newContext(PHONE);
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    await load(page, url);
    return await page.evaluate(
      () =>
        new Promise<{ ms: number; element: string }>((resolve) => {
          new PerformanceObserver((list) => {
            const entries = list.getEntries();
            const last = entries[entries.length - 1] as PerformanceEntry & { element?: Element | null };
            const el = last.element;
            const id = el?.getAttribute('data-testid');
            const element = el
              ? `${el.tagName.toLowerCase()}${id ? `[${id}]` : ''} "${(el.textContent ?? '').slice(0, 30)}"`
              : '?';
            resolve({ ms: last.startTime, element });
          }).observe({ type: 'largest-contentful-paint', buffered: true });
        }),
    );
  } finally {
    await context.close();
  }
}

export interface JsFigures {
  raw: number;
  gzip: number;
}

export async function jsSize(webDist = join(REPO_ROOT, 'dist/web')): Promise<JsFigures> {
  const dir = join(webDist, 'assets');
  let raw = 0;
  let gzip = 0;
  for (const f of (await readdir(dir)).filter((a) => a.endsWith('.js'))) {
    const bytes = await readFile(join(dir, f));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzip };
}

interface Figures {
  label: string;
  at: string;
  js: JsFigures;
  pages: Record<`${Width}-${State}`, { axe: AxeFigures; overflow: OverflowFigures }>;
  lcp: Record<State, { medianMs: number; samplesMs: number[]; elements: string[] }>;
}

async function main(): Promise<Figures> {
  const { values } = parseArgs({
    options: {
      label: { type: 'string', default: 'current' },
      screenshots: { type: 'string' },
      'first-screen': { type: 'boolean', default: false },
      loads: { type: 'string', default: '5' },
      'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL },
    },
  });
  const loads = Number(values.loads);
  if (!Number.isInteger(loads) || loads < 1 || loads > 50) throw new Error('--loads: expected 1 to 50');
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM} (apt-get install chromium)`);
  if (!existsSync(join(REPO_ROOT, 'dist/web/index.html'))) throw new Error('dist/web is missing: npm run build');

  const adminUrl = values['database-url'];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const figures: Figures = {
    label: values.label,
    at: new Date().toISOString(),
    js: await jsSize(),
    pages: {} as Figures['pages'],
    lcp: {} as Figures['lcp'],
  };
  try {
    for (const state of ['healthy', 'incident'] as const) {
      const name = `sentinel_bench_dashboard_${state}_${process.pid}`;
      const url = withDatabase(adminUrl, name);
      const dir = await tempDir(`sentinel-bench-dashboard-${state}`);
      let served: Served | undefined;
      await dropDatabase(adminUrl, name);
      await createDatabase(adminUrl, name);
      try {
        await runCli(['migrate', '--with-intake'], sentinelEnv(url, dir.path));
        await withClient(url, (c) => seedDashboard(c, state));
        let config: string | undefined;
        if (state === 'incident') {
          config = join(dir.path, 'sentinel.yaml');
          await writeFile(config, INCIDENT_CONFIG);
        }
        served = await serve(url, join(dir.path, 'state'), config);
        log(`${state}: serving ${served.url}`);

        for (const [width, options] of [
          ['phone', PHONE],
          ['desktop', DESKTOP],
        ] as const) {
          const context = await browser.newContext(options);
          const page = await context.newPage();
          await load(page, served.url);
          figures.pages[`${width}-${state}`] = { axe: await axe(page), overflow: await overflow(page) };
          await context.close();
          if (values.screenshots) {
            // Screenshots at a lower density than the measurement: small files, still sharp.
            const shot = await browser.newContext({ ...options, deviceScaleFactor: width === 'phone' ? 2 : 1 });
            const p = await shot.newPage();
            await load(p, served.url);
            const path = resolve(REPO_ROOT, `${values.screenshots}-${width}-${state}.png`);
            await mkdir(dirname(path), { recursive: true });
            await p.screenshot({ path, fullPage: !values['first-screen'] });
            await shot.close();
            // A page wider than the phone (the bug) makes a huge file: keep it in CSS pixels then.
            if ((await stat(path)).size > MAX_SCREENSHOT_BYTES) {
              const small = await browser.newContext({ ...options, deviceScaleFactor: 1 });
              const q = await small.newPage();
              await load(q, served.url);
              await q.screenshot({ path, fullPage: true });
              await small.close();
            }
          }
        }
        const samples: number[] = [];
        const elements = new Set<string>();
        for (let i = 0; i < loads; i++) {
          const lcp = await lcpOnce(browser, served.url);
          samples.push(Math.round(lcp.ms));
          elements.add(lcp.element);
        }
        figures.lcp[state] = { medianMs: median(samples), samplesMs: samples, elements: [...elements] };
      } finally {
        if (served) await stopChild(served.child);
        await dropDatabase(adminUrl, name).catch(() => undefined);
        await dir.remove();
      }
    }
  } finally {
    await browser.close();
  }

  const rows: string[][] = [];
  for (const [key, p] of Object.entries(figures.pages)) {
    rows.push([
      key,
      String(p.axe.critical),
      String(p.axe.serious),
      `${p.overflow.scrollWidth} / ${p.overflow.viewportWidth}`,
      String(p.overflow.overflowing),
      p.axe.rules.join(', '),
    ]);
  }
  log(
    `dashboard (${figures.label})\n${formatTable(
      ['page', 'axe critical', 'axe serious', 'scrollWidth / viewport', 'overflowing elements', 'rules'],
      rows,
    )}\nLCP at 390 px, 4x CPU throttling, median of ${loads}: healthy ${figures.lcp.healthy.medianMs} ms, ` +
      `incident ${figures.lcp.incident.medianMs} ms (elements: ${figures.lcp.healthy.elements.join(', ')}; ` +
      `${figures.lcp.incident.elements.join(', ')})\nJS: ${figures.js.raw} bytes raw, ${figures.js.gzip} bytes gzip`,
  );
  const out = join(REPO_ROOT, 'bench/results', `dashboard-${figures.label}.json`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(figures, null, 2)}\n`);
  return figures;
}
runMain(main);
