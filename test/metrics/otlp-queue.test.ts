import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { OtlpSettings } from '../../src/config/otlp.js';
import { startOtlpExport } from '../../src/metrics/otlp.js';
import { recordingLogger } from '../helpers/logger.js';
import { type OtlpReceiver, pointKey, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { gate } from '../helpers/wait.js';

/**
 * The export's queue, against a receiver that holds its answer for as long as the test chooses:
 * a loop that runs every second while a collector hangs must hold one export in flight and one
 * waiting, not a queue that grows with every run; and the waiting one carries the newest figures.
 */

let receiver: OtlpReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

const settings = (url: string): OtlpSettings => ({
  url: `${url}/v1/metrics`,
  urlSetting: '--otlp-endpoint',
  protocol: 'http/json',
  headers: {},
  timeoutMs: 30_000,
  temporality: 'cumulative',
  intervalMs: 60_000,
  resource: {},
  secrets: [],
});

describe('the OTLP export queue', () => {
  it('holds one export in flight and one waiting while the receiver hangs, whatever the number of runs', async () => {
    receiver = await startOtlpReceiver();
    const held = gate();
    receiver.server.queue({ status: 200, until: held.promise, headers: { connection: 'close' } });
    const registry = new Registry();
    const runs = new Counter({ name: 'x_runs_total', help: 'runs', registers: [registry] });
    const logger = recordingLogger();
    const otlp = await startOtlpExport(settings(receiver.url), registry, {
      logger,
      redact: (t) => t,
      environment: 'test',
    });

    runs.inc();
    const first = otlp.exportNow();
    await receiver.server.received(1);
    // Ten more runs while the first export hangs: they share one waiting export.
    const waiting: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) {
      runs.inc();
      waiting.push(otlp.exportNow());
    }
    expect(new Set(waiting).size).toBe(1);
    held.open();
    await Promise.all([first, ...waiting]);
    await otlp.close();

    // The held one, the waiting one (with all ten runs) and the final one at close: three, not twelve.
    expect(receiver.server.requests).toHaveLength(3);
    expect(receiver.invalid).toEqual([]);
    const values = receiver.exports.map(
      (e) => e.points.find((p) => pointKey(p) === pointKey({ metric: 'x_runs_total', attributes: {} }))?.value,
    );
    expect(values).toEqual([1, 11, 11]);
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toEqual([]);
  });
});
