import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliEnv } from '../helpers/cli.js';
import { adminUrl, createTestDatabase, ident, type TestDb } from '../helpers/db.js';
import { insertBatch, insertRowErrors, minutesAgo } from '../helpers/fixtures.js';
import { requirePart } from '../helpers/parts.js';
import { withAdmin } from '../helpers/pg.js';
import { waitFor } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

/**
 * The dashboard page in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser is ever downloaded) against the built
 * `sentinel serve` on seeded real databases.
 */

const CHROMIUM = process.env.SENTINEL_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_DIST = join(ROOT, 'dist/web');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const TOKEN = 'e2e-token-4f1b2c9d';

// Locally without chromium: skipped with a reason. In CI it must be there (.ci/run installs it): fail.
describe.runIf(
  requirePart(`Chromium (${CHROMIUM})`, haveChromium, "apt-get install chromium (Debian's), or set SENTINEL_CHROMIUM"),
)('dashboard in headless Chromium', () => {
  let browser: Browser;
  let stateRoot: string;
  const dbs: TestDb[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(join(WEB_DIST, 'index.html'))) throw new Error('dist/web/index.html is missing: run npm run build');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    stateRoot = await mkdtemp(join(tmpdir(), 'sentinel-e2e-'));
    await mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await browser?.close();
    for (const db of dbs) await db.drop();
    if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
  });

  const pages: Page[] = [];
  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close().catch(() => {});
  });

  async function database(): Promise<TestDb> {
    const db = await createTestDatabase();
    dbs.push(db);
    return db;
  }

  /** `sentinel serve` on `db`; resolves with the URL it prints once it has finished a first run. */
  async function serve(db: TestDb, args: string[] = ['--listen', '127.0.0.1:0'], env: Record<string, string> = {}) {
    const stateDir = await mkdtemp(join(stateRoot, 'state-'));
    const child = spawn(process.execPath, [CLI, 'serve', '--interval', '1', ...args], {
      env: cliEnv({ DATABASE_URL: db.url, SENTINEL_STATE_DIR: stateDir, ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.resume();
    let exited = false;
    child.on('close', () => (exited = true));
    await waitFor(() => /Listening on http:\/\/\S+/.test(stderr) || exited, 15_000, `"Listening on" in: ${stderr}`);
    const m = /Listening on (http:\/\/\S+)/.exec(stderr);
    if (!m) throw new Error(`sentinel serve did not start: ${stderr}`);
    return { url: m[1]!.replace(/\/$/, ''), child, stderr: () => stderr };
  }

  /** Waits until /api/status reports a finished run (the page then has something to show). */
  async function firstRun(url: string, token?: string): Promise<void> {
    await until(
      async () => {
        const res = await fetch(`${url}/api/status`, {
          headers: token ? { Authorization: `Bearer ${token}` } : {},
        }).catch(() => undefined);
        return !!res?.ok && !!((await res.json()) as { last_run_at: string | null }).last_run_at;
      },
      `a finished run at ${url}`,
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  }

  interface Watched {
    page: Page;
    /** CSP violations and page errors seen so far. */
    violations: string[];
    errors: string[];
  }

  async function open(url: string): Promise<Watched> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
    const page = await context.newPage();
    pages.push(page);
    const violations: string[] = [];
    const errors: string[] = [];
    await page.exposeFunction('__reportViolation', (v: string) => violations.push(v));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window as unknown as { __reportViolation: (v: string) => void }).__reportViolation(
          `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sample})`,
        );
      });
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (msg) => {
      // Only the API's own answers are expected here: 401 from the token gate and 503
      // while the database is down. A missing asset (404) must show up.
      if (
        msg.type() === 'error' &&
        !/Failed to load resource: the server responded with a status of (401|503)/.test(msg.text())
      )
        errors.push(msg.text());
    });
    await page.goto(url);
    return { page, violations, errors };
  }

  /** Heights (px) of the drawn bars of each series of the batch chart, oldest hour first. */
  async function barHeights(page: Page): Promise<number[][]> {
    return page.$$eval('[data-testid="batch-chart"] .recharts-bar', (series) =>
      series.map((s) =>
        Array.from(s.querySelectorAll('.recharts-bar-rectangle'))
          .map((g) => {
            const shape = g.querySelector('path, rect') as SVGGraphicsElement | null;
            return shape ? shape.getBBox().height : 0;
          })
          .map((h) => Math.round(h * 100) / 100),
      ),
    );
  }

  it('shows a healthy pipeline: status, chart bars proportional to the fixture, page weight and load time', async () => {
    const db = await database();
    // Completed/failed batches in three past hours (10 minutes into each hour: no bucket edge).
    const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const at = (hoursAgo: number) => new Date(hourStart - hoursAgo * 3_600_000 + 10 * 60_000);
    const fixture: Array<{ hoursAgo: number; completed: number; failed: number }> = [
      { hoursAgo: 5, completed: 6, failed: 0 },
      { hoursAgo: 3, completed: 3, failed: 1 },
      { hoursAgo: 1, completed: 4, failed: 2 },
    ];
    for (const f of fixture) {
      for (let i = 0; i < f.completed; i++)
        await insertBatch(db.pool, {
          status: 'completed',
          total_rows: 100,
          inserted_rows: 100,
          created_at: at(f.hoursAgo),
        });
      for (let i = 0; i < f.failed; i++)
        await insertBatch(db.pool, {
          status: 'failed',
          total_rows: 100,
          rejection_reason: 'bad header',
          created_at: at(f.hoursAgo),
        });
    }
    const { url } = await serve(db);
    await firstRun(url);

    const started = Date.now();
    const { page, violations, errors } = await open(url);
    await page.waitForFunction(() =>
      Array.from(
        document.querySelectorAll(
          '[data-testid="batch-chart"] .recharts-bar-rectangle path, [data-testid="batch-chart"] .recharts-bar-rectangle rect',
        ),
      ).some((el) => (el as SVGGraphicsElement).getBBox().height > 0),
    );
    const loadMs = Date.now() - started;

    await expect.poll(() => page.textContent('[data-testid="overall-status"]')).toBe('Healthy');
    expect(await page.getAttribute('[data-testid="overall-status"]', 'data-status')).toBe('healthy');
    expect(await page.textContent('[data-testid="total-completed"]')).toBe('13');
    expect(await page.textContent('[data-testid="total-failed"]')).toBe('3');
    expect(await page.getAttribute('[data-testid="batch-chart"]', 'data-points')).toBe('24');

    const [completed, failed] = await barHeights(page);
    expect(completed).toHaveLength(24);
    expect(failed).toHaveLength(24);
    // Oldest hour first: index 23 is the current hour.
    const expectedCompleted = Array.from(
      { length: 24 },
      (_, i) => fixture.find((f) => f.hoursAgo === 23 - i)?.completed ?? 0,
    );
    const expectedFailed = Array.from(
      { length: 24 },
      (_, i) => fixture.find((f) => f.hoursAgo === 23 - i)?.failed ?? 0,
    );
    expect(completed!.filter((h) => h > 0)).toHaveLength(3);
    expect(failed!.filter((h) => h > 0)).toHaveLength(2);
    // Every drawn bar has height = value × the same scale (px per batch).
    const scale = completed![23 - 5]! / 6;
    expect(scale).toBeGreaterThan(5);
    for (const [i, h] of completed!.entries()) expect(h).toBeCloseTo(expectedCompleted[i]! * scale, 0);
    for (const [i, h] of failed!.entries()) expect(h).toBeCloseTo(expectedFailed[i]! * scale, 0);

    // The 7 d toggle survives an auto-refresh (15 s) and shows 168 hours.
    await page.click('[data-testid="range-168"]');
    await expect.poll(() => page.getAttribute('[data-testid="batch-chart"]', 'data-points')).toBe('168');
    await page.waitForTimeout(16_000);
    expect(await page.getAttribute('[data-testid="range-168"]', 'aria-pressed')).toBe('true');
    expect(await page.getAttribute('[data-testid="batch-chart"]', 'data-points')).toBe('168');
    await page.click('[data-testid="range-24"]');
    await expect.poll(() => page.getAttribute('[data-testid="batch-chart"]', 'data-points')).toBe('24');

    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-healthy.png'), fullPage: true });

    // Page weight: every JS and CSS asset of dist/web, gzipped.
    const assets = await readdir(join(WEB_DIST, 'assets'));
    let raw = 0;
    let gz = 0;
    for (const f of assets.filter((a) => /\.(js|css)$/.test(a))) {
      const bytes = await readFile(join(WEB_DIST, 'assets', f));
      raw += bytes.length;
      gz += gzipSync(bytes, { level: 9 }).length;
    }
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return { domContentLoaded: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
    });
    console.log(
      `dashboard page weight: ${(gz / 1024).toFixed(1)} KiB gzipped JS+CSS (${(raw / 1024).toFixed(1)} KiB raw); ` +
        `load time: ${loadMs} ms to a drawn chart (DOMContentLoaded ${nav.domContentLoaded} ms, load ${nav.load} ms)`,
    );

    expect(violations, 'CSP violations').toEqual([]);
    expect(errors, 'page errors').toEqual([]);
  }, 60_000);

  it('shows an incident: a stuck batch as a critical alert, stuck pipeline row, and a <script> error message as text', async () => {
    const db = await database();
    await insertBatch(db.pool, { status: 'processing', created_at: minutesAgo(40), updated_at: minutesAgo(35) });
    const failed = await insertBatch(db.pool, {
      status: 'failed',
      total_rows: 10,
      error_rows: 10,
      created_at: minutesAgo(70),
    });
    const hostile = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`;
    await insertRowErrors(db.pool, failed, [
      { error_code: 'E_HOSTILE', error_message: hostile, created_at: minutesAgo(69) },
      { error_code: 'E_HOSTILE', error_message: hostile, created_at: minutesAgo(68) },
      { error_code: 'E_DATE', error_message: 'invalid date "31/02/2025"', created_at: minutesAgo(68) },
    ]);
    const { url } = await serve(db);
    await firstRun(url);

    const { page, violations, errors } = await open(url);
    await expect.poll(() => page.textContent('[data-testid="overall-status"]'), { timeout: 10_000 }).toBe('Critical');
    const stuck = page.locator('[data-testid="alert"][data-check="stuck_batches"]');
    await stuck.waitFor();
    expect(await stuck.getAttribute('data-level')).toBe('critical');
    expect(await stuck.textContent()).toContain('CRITICAL');

    const row = page.locator('[data-testid="pipeline-row"][data-status="processing"]');
    expect(await row.getAttribute('data-stuck')).toBe('true');
    expect(await row.textContent()).toContain('STUCK');

    const sample = page.locator('[data-testid="sample-message"]', { hasText: 'window.__xss' });
    expect(await sample.textContent()).toBe(hostile);
    expect(await sample.locator('script, img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();

    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-incident.png'), fullPage: true });
    await mkdir(join(ROOT, 'docs'), { recursive: true });
    await copyFile(join(ARTIFACTS, 'dashboard-incident.png'), join(ROOT, 'docs/dashboard.png'));

    expect(violations, 'CSP violations').toEqual([]);
    expect(errors, 'page errors').toEqual([]);
  }, 60_000);

  it('asks for the token once off loopback, keeps it for the tab and sends it as a bearer token', async () => {
    const db = await database();
    // A non-loopback address of this machine if it has one; else every interface.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    const { url: printed } = await serve(db, ['--listen', `${external ?? '0.0.0.0'}:0`], {
      SENTINEL_DASHBOARD_TOKEN: TOKEN,
    });
    const url = printed.replace('://0.0.0.0:', '://127.0.0.1:');
    expect((await fetch(`${url}/api/status`)).status).toBe(401);
    await firstRun(url, TOKEN);

    const { page, violations, errors } = await open(url);
    const form = page.locator('[data-testid="token-form"]');
    await form.waitFor();
    expect(await page.locator('[data-testid="overall-status"]').count()).toBe(0);

    await page.fill('#token', 'wrong-token');
    await page.click('[data-testid="token-form"] button[type="submit"]');
    await expect.poll(() => form.textContent()).toContain('refused');

    const authHeaders: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/')) authHeaders.push(r.headers().authorization ?? '');
    });
    await page.fill('#token', TOKEN);
    await page.click('[data-testid="token-form"] button[type="submit"]');
    await page.locator('[data-testid="overall-status"]').waitFor();
    expect(authHeaders.length).toBeGreaterThan(0);
    expect(new Set(authHeaders)).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(await page.evaluate(() => sessionStorage.getItem('sentinel.dashboardToken'))).toBe(TOKEN);

    // Once per tab: a reload does not ask again.
    await page.reload();
    await page.locator('[data-testid="overall-status"]').waitFor();
    expect(await form.count()).toBe(0);

    expect(violations, 'CSP violations').toEqual([]);
    expect(errors, 'page errors').toEqual([]);
  }, 60_000);

  it('shows the unreachable-database banner when the database refuses connections', async () => {
    const db = await database();
    await insertBatch(db.pool, { status: 'completed', created_at: minutesAgo(30) });
    const { url } = await serve(db);
    await firstRun(url);

    const { page, violations, errors } = await open(url);
    await page.locator('[data-testid="overall-status"]').waitFor();
    expect(await page.locator('[data-testid="banner-db"]').count()).toBe(0);

    // The database goes away: no new connections, the existing ones cut.
    await withAdmin(adminUrl(), async (admin) => {
      await admin.query(`alter database ${ident(db.name)} allow_connections false`);
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [db.name],
      );
    });
    // The server has noticed (its API says so, past its few-second cache), then what a reload shows.
    await until(
      async () => (await fetch(`${url}/api/pipeline-health`)).status === 503,
      'the API to report the database unreachable',
      { timeoutMs: 25_000, intervalMs: 200 },
    );
    await expect
      .poll(
        async () => {
          await page.reload();
          await page.waitForLoadState('networkidle');
          return page.locator('[data-testid="banner-db"]').count();
        },
        { timeout: 25_000, interval: 1000 },
      )
      .toBe(1);
    expect(await page.textContent('[data-testid="banner-db"]')).toContain('Database unreachable');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-database-unreachable.png'), fullPage: true });

    await withAdmin(adminUrl(), (admin) => admin.query(`alter database ${ident(db.name)} allow_connections true`));
    expect(violations, 'CSP violations').toEqual([]);
    expect(errors, 'page errors').toEqual([]);
  }, 60_000);
});
