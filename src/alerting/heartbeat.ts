import type { Logger } from '../log.js';
import { request } from '../notifiers/http.js';
import type { Redactor } from '../util/redact.js';

/**
 * Dead man's switch (healthchecks.io and the like): a ping after every completed
 * run, `<url>/fail` when Sentinel itself could not run, so someone learns when
 * the monitor stops. Best effort: a failed ping is logged, never fatal, and never
 * holds a run for more than a few seconds.
 */
export async function pingHeartbeat(
  url: string,
  outcome: 'ok' | 'fail',
  logger: Logger,
  redactor: Redactor,
): Promise<boolean> {
  const target = outcome === 'fail' ? `${url.replace(/\/+$/, '')}/fail` : url;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await request({ url: target, method: 'POST', body: '', label: 'heartbeat', secrets: [url], timeoutMs: 5000 });
      logger.debug(`Heartbeat sent (${outcome})`);
      return true;
    } catch (err) {
      if (attempt === 2) logger.warn(`Heartbeat ping failed: ${redactor.redact((err as Error).message)}`);
    }
  }
  return false;
}
