import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Moves this host's alert state back in time by `ms`, as if that much time had passed
 * since each alert was last notified: how a test of separate `sentinel` processes
 * reaches `repeat_interval` without waiting for it. Only while no run is writing the
 * state (the tests call it between runs).
 */
export async function ageNotifications(stateDir: string, ms: number): Promise<void> {
  const file = join(stateDir, 'alerting.json');
  const state = JSON.parse(await readFile(file, 'utf8')) as {
    alerts: Record<string, { lastNotifiedAt?: string }>;
  };
  const alerts = Object.values(state.alerts);
  if (!alerts.some((a) => a.lastNotifiedAt)) throw new Error(`no notified alert in ${file} to age`);
  for (const alert of alerts) {
    if (alert.lastNotifiedAt) alert.lastNotifiedAt = new Date(Date.parse(alert.lastNotifiedAt) - ms).toISOString();
  }
  await writeFile(file, JSON.stringify(state));
}
