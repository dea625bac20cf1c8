import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertingState } from '../../src/alerting/store.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/db.js';
import { insertBatch, minutesAgo } from '../helpers/fixtures.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { spawnWatched } from '../helpers/processes.js';

/**
 * Fault suite, KILL mid-delivery: a one-shot `sentinel` run (the built CLI, as cron
 * starts it) is SIGKILLed while its notification request is in flight. The outbox
 * was written before the request went out, so nothing is lost: the next run sends
 * the message (at least once: the killed run's request may have arrived too).
 */

const TOKEN = 'tok0123456789abcdefghijklmnop';
const WEBHOOK_PATH = `/api/webhooks/123456789012345678/${TOKEN}`;

const database = useTestDatabase();
let sink: TestHttpServer;
let dir: string;

beforeEach(async () => {
  sink = await startHttpServer();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-kill-delivery-'));
  await writeFile(
    join(dir, 'sentinel.yaml'),
    `notifiers:\n  - { name: oncall, type: discord, webhook_url: "${sink.url}${WEBHOOK_PATH}", timeout_seconds: 60 }\n`,
  );
});
afterEach(async () => {
  await sink.close();
  await rm(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({
  DATABASE_URL: database().url,
  SENTINEL_STATE_DIR: join(dir, 'state'),
  SENTINEL_CONFIG: join(dir, 'sentinel.yaml'),
});
const readState = async (): Promise<AlertingState> =>
  JSON.parse(await readFile(join(dir, 'state', 'alerting.json'), 'utf8')) as AlertingState;
const alertsIn = (body: string): string[] =>
  (JSON.parse(body) as { embeds: Array<{ title: string }> }).embeds.map((e) => e.title);

describe('SIGKILL while a notification is in flight', () => {
  it('loses nothing: the next run delivers the message, and the run after it sends nothing more', async () => {
    await insertBatch(database().pool, {
      source: 'vendor_a',
      status: 'processing',
      created_at: minutesAgo(40),
      updated_at: minutesAgo(30),
    });
    // The provider reads the request and holds it: the run is stuck in delivery.
    sink.fallback({ status: 200, hang: true });
    const killed = spawnWatched([CLI, '--json'], cliEnv(env()));
    await sink.received(1);
    killed.child.kill('SIGKILL');
    expect(await killed.ended).toEqual({ code: null, signal: 'SIGKILL' });

    // The notification is still in the outbox, claimed by a process that is gone.
    const before = await readState();
    expect(before.outbox).toHaveLength(1);
    expect(before.outbox[0]!.claimedBy).toContain(`|${killed.child.pid}|`);

    // The provider is back; the next cron run delivers it.
    sink.fallback({
      status: 200,
      body: { id: '1182736451234567890', type: 0, content: 'Sentinel', webhook_id: '123456789012345678' },
    });
    const next = await runCli(['--json'], env());
    expect(next.code).toBe(2);
    const report = JSON.parse(next.stdout) as { notifications: unknown[] };
    expect(report.notifications).toEqual([
      expect.objectContaining({ notifier: 'oncall', type: 'discord', sent: 1, pending: 0, failed: 0 }),
    ]);
    expect(sink.requests).toHaveLength(2);
    expect(sink.requests[1]!.body).toBe(sink.requests[0]!.body);
    expect(alertsIn(sink.requests[1]!.body)).toEqual(['FIRING critical stuck\\_batches']);
    expect((await readState()).outbox).toEqual([]);

    // Delivered once after the kill: a further run of the same incident sends nothing.
    const after = await runCli(['--json'], env());
    expect(after.code).toBe(2);
    expect(sink.requests).toHaveLength(2);
  }, 60_000);
});
