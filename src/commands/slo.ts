import { describeError } from '../checks/runner.js';
import type { ConfigFlags } from '../config/load.js';
import { createPool, endPool } from '../db/pool.js';
import type { LogLevel } from '../log.js';
import { createRuntime } from '../runtime.js';
import { computeSlos } from '../slo/compute.js';
import { renderSloHuman } from '../slo/render.js';

/** The SLO queries read up to a year of batches: more time than a check's query gets. */
const MIN_STATEMENT_TIMEOUT_MS = 30_000;

/**
 * `sentinel slo [--days N] [--json]`: the guide's four SLOs over the last N days.
 * Exit 0 when every SLO with data is met, 1 when one is missed, 3 when Sentinel
 * cannot compute them (bad flags, database unreachable).
 */
export async function sloCommand(
  flags: ConfigFlags & { days?: number; json?: boolean; logLevel?: LogLevel },
): Promise<number> {
  const { config, logger, redactor, deployment } = await createRuntime(flags);
  const days = flags.days ?? 30;
  if (days > config.history.retention_days) {
    logger.warn(
      `history.retention_days is ${config.history.retention_days}: ` +
        `the schema-cache SLO covers only the runs of the last ${config.history.retention_days} days`,
    );
  }
  const pool = createPool(config.env.databaseUrl, {
    max: 2,
    statementTimeoutMs: Math.max(config.statement_timeout_ms, MIN_STATEMENT_TIMEOUT_MS),
    connectTimeoutMs: config.connect_timeout_seconds * 1000,
  });
  const history = deployment.runHistory({ readOnly: true });
  try {
    const { rows } = await pool.query<{ now: Date }>('select now() as now');
    const now = rows[0]!.now;
    const runs = await history.read(new Date(now.getTime() - days * 86_400_000), now);
    const report = await computeSlos({
      db: pool,
      now,
      days,
      environment: config.env.name,
      minRows: config.checks.error_spike.min_rows,
      alertThresholdPct: config.checks.error_spike.threshold_pct,
      runs,
    });
    const text = flags.json ? JSON.stringify(report) : renderSloHuman(report);
    process.stdout.write(`${redactor.redact(text)}\n`);
    return report.all_met ? 0 : 1;
  } catch (err) {
    throw new Error(`cannot compute the SLOs: ${describeError(err)}`, { cause: err });
  } finally {
    await endPool(pool);
    await history.close?.();
  }
}
