import { schemaCacheCheck } from '../checks/schema_cache.js';
import type { Level, RunResult } from '../types.js';

/**
 * One run as the history keeps it: what `sentinel slo` needs (the schema-cache
 * probe outcome) and enough to answer "what did Sentinel see at 03:10?" later,
 * without the alerts' full details.
 */
export interface RunRecord {
  /** ISO 8601 UTC time the run finished (the report's `timestamp`). */
  timestamp: string;
  environment: string;
  overall_status: RunResult['overall_status'];
  duration_ms: number;
  checks: RunRecordCheck[];
  schema_cache: SchemaCacheProbe;
}

export interface RunRecordCheck {
  name: string;
  outcome: RunResult['checks'][number]['outcome'];
  /** The worst level among this check's alerts; null when it raised none. */
  level: Level | null;
  duration_ms: number;
}

/**
 * What the schema-cache probe saw. `probed: false` when the check was skipped (no
 * PostgREST configured) or is disabled; `ok` is then null. A probe that needed a
 * reload to recover counts as not ok: PostgREST was failing when it was probed.
 */
export interface SchemaCacheProbe {
  probed: boolean;
  ok: boolean | null;
  /** The PostgREST error code (`PGRST002`, …) of a failed probe, when there was one. */
  code?: string;
}

/** The history record of a run's result. */
export function recordOf(result: RunResult): RunRecord {
  const worst = (check: string): Level | null => {
    const levels = result.alerts.filter((a) => a.check === check).map((a) => a.level);
    return levels.includes('critical') ? 'critical' : levels.includes('warning') ? 'warning' : null;
  };
  return {
    timestamp: result.timestamp,
    environment: result.environment,
    overall_status: result.overall_status,
    duration_ms: result.duration_ms,
    checks: result.checks.map((c) => ({
      name: c.name,
      outcome: c.outcome,
      level: worst(c.name),
      duration_ms: c.duration_ms,
    })),
    schema_cache: schemaCacheProbe(result),
  };
}

function schemaCacheProbe(result: RunResult): SchemaCacheProbe {
  const check = result.checks.find((c) => c.name === schemaCacheCheck.name);
  if (!check || check.outcome === 'skipped') return { probed: false, ok: null };
  if (check.outcome === 'ok') return { probed: true, ok: true };
  const code = result.alerts.find((a) => a.check === schemaCacheCheck.name && typeof a.details.code === 'string')
    ?.details.code as string | undefined;
  return { probed: true, ok: false, ...(code ? { code } : {}) };
}
