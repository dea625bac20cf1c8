/**
 * What an alert is about, read from its `details` (the checks' agreed shapes): the
 * batches behind stuck_batches and queue_backlog, the sources behind an error spike.
 * Details are data from the server and may lack any field: every reader is
 * defensive and returns what it can. Pure: table-tested in test/web/format.test.ts.
 */
import type { AlertsResponse } from '../../src/server/api-types.js';
import { short } from './format.js';

export type ApiAlert = AlertsResponse['alerts'][number];

export interface AlertBatch {
  id: string;
  source: string;
  status?: string;
  age_minutes?: number;
}

export interface TopSource {
  source: string;
  error_rate_pct: number;
  error_rows: number;
  total_rows: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const records = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => !!x && typeof x === 'object') : [];

/** `details.oldest_batches` (stuck_batches, queue_backlog), oldest first as the check lists them. */
export function alertBatches(alert: ApiAlert): AlertBatch[] {
  return records(alert.details?.oldest_batches).flatMap((b) => {
    const id = str(b.id) ?? (num(b.id) !== undefined ? String(b.id) : undefined);
    const source = str(b.source);
    if (id === undefined || source === undefined) return [];
    const status = str(b.status);
    const age = num(b.age_minutes);
    return [
      { id, source, ...(status !== undefined ? { status } : {}), ...(age !== undefined ? { age_minutes: age } : {}) },
    ];
  });
}

/** `details.top_sources` of the overall error_spike alert, as the check sorted them. */
export function topSources(alert: ApiAlert): TopSource[] {
  return records(alert.details?.top_sources).flatMap((s) => {
    const source = str(s.source);
    const rate = num(s.error_rate_pct);
    if (source === undefined || rate === undefined) return [];
    return [{ source, error_rate_pct: rate, error_rows: num(s.error_rows) ?? 0, total_rows: num(s.total_rows) ?? 0 }];
  });
}

/** The source a per-source alert is about: its `subject`, else `details.source`. */
export function alertSource(alert: ApiAlert): string | undefined {
  return alert.subject ?? str(alert.details?.source);
}

/**
 * One short phrase naming what the alert is about, for the first screen: the source
 * of a per-source alert, the sources of the batches behind it, or the top
 * contributors of an overall spike (`overall: vendor_a, vendor_b +1`).
 */
export function aboutLine(alert: ApiAlert, max = 2, nameChars = 40): string {
  const list = (names: string[]): string => {
    const unique = [...new Set(names)];
    const shown = unique
      .slice(0, max)
      .map((n) => short(n, nameChars))
      .join(', ');
    return unique.length > max ? `${shown} +${unique.length - max}` : shown;
  };
  const source = alertSource(alert);
  if (source !== undefined) return `source ${short(source, nameChars)}`;
  const batches = alertBatches(alert);
  if (batches.length > 0) return `source ${list(batches.map((b) => b.source))}`;
  const top = topSources(alert);
  if (top.length > 0) return `overall; top: ${list(top.map((t) => t.source))}`;
  return alert.check === 'error_spike' || alert.check === 'dedupe_rate' ? 'overall (all sources)' : '';
}

/** Critical first, then warnings; within a level the order of the run. */
export function sortAlerts(alerts: readonly ApiAlert[]): ApiAlert[] {
  return alerts
    .map((a, i) => ({ a, i }))
    .sort((x, y) => (x.a.level === y.a.level ? x.i - y.i : x.a.level === 'critical' ? -1 : 1))
    .map((x) => x.a);
}
