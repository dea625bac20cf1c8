import type { ConfigFlags } from '../config/load.js';
import { describeError } from '../db/errors.js';
import { buildHourlyRollup } from '../db/hourly.js';
import { MigrationError, migrate } from '../db/migrate.js';
import { buildErrorRollup } from '../db/rollup.js';
import type { LogLevel } from '../log.js';
import { createRuntime } from '../runtime.js';
import { displayUrl } from '../util/redact.js';

/** `sentinel migrate [--with-intake]`: returns 0 when every file is applied or unchanged, 3 otherwise. */
export async function migrateCommand(
  flags: ConfigFlags & { withIntake?: boolean; lockTimeout?: number; logLevel?: LogLevel },
): Promise<number> {
  const { config, logger, redactor } = await createRuntime(flags);
  logger.info(`Migrating ${displayUrl(config.env.databaseUrl)} (environment ${config.env.name})`);
  try {
    const results = await migrate(config.env.databaseUrl, {
      withIntake: Boolean(flags.withIntake),
      logger,
      lockTimeoutMs: Math.round((flags.lockTimeout ?? 5) * 1000),
    });
    for (const r of results) logger.info(`${r.name}: ${r.status}`);
    try {
      await buildErrorRollup(config.env.databaseUrl, logger);
    } catch (err) {
      // Not a migration failure: the views are exact without it, and every run refreshes it.
      logger.warn(`Could not build the error rollup now: ${describeError(err)}; the runs will build it over time`);
    }
    try {
      await buildHourlyRollup(config.env.databaseUrl, logger);
    } catch (err) {
      // Not a migration failure either: the triggers keep new writes; the backfill resumes where it stopped.
      logger.warn(`Could not backfill the hourly rollup now: ${describeError(err)}; run \`sentinel migrate\` again`);
    }
    const stateUrl = config.replicas.state_database_url;
    if (stateUrl) {
      // Replicas keep their shared alert state (and elect their leader) there.
      logger.info(`Migrating the replicas' state database ${displayUrl(stateUrl)}`);
      const state = await migrate(stateUrl, {
        scope: 'state',
        logger,
        lockTimeoutMs: Math.round((flags.lockTimeout ?? 5) * 1000),
      });
      for (const r of state) logger.info(`${r.name} (state database): ${r.status}`);
    }
    logger.info(`Migration complete for environment ${config.env.name}`);
    return 0;
  } catch (err) {
    if (err instanceof MigrationError) {
      process.stderr.write(`${redactor.redact(`sentinel: migration failed: ${err.message}`)}\n`);
      return 3;
    }
    throw err;
  }
}
