/**
 * The limits moved to util/limits.ts, below the checks that declare their own
 * settings (a lower layer may not import config/). Re-exported so that existing
 * importers keep working until they import util/limits.ts directly.
 */
export * from '../util/limits.js';
