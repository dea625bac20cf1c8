import type { Alert, RunResult } from '../types.js';
import { cut, MAX_CHARS, oneLine } from '../util/text.js';
import type { SourceBucketFigures, SourceRow, SourcesResponse } from './api-types.js';

/** Longest source name in an answer (as error codes and statuses elsewhere in the API). */
export const MAX_SOURCE_CHARS = 256;

/** What `/api/sources` needs from the configuration. */
export interface SourceThresholds {
  /** checks.error_spike.threshold_pct */
  overallPct: number;
  /** sources.<name>.error_spike_threshold_pct, by source. */
  own: Readonly<Record<string, number>>;
}

/**
 * The forms a source name can take in an alert: as written, or cut/escaped the way
 * checks put names into messages and details (util/text.ts). A name counts as named
 * by an alert when any of them matches.
 */
function forms(source: string): Set<string> {
  const out = new Set([source, cut(source, MAX_SOURCE_CHARS)]);
  for (const max of Object.values(MAX_CHARS)) out.add(oneLine(source, max));
  return out;
}

/** Every source-ish string an alert carries: its subject, details.source, top sources, batches' sources. */
export function alertSources(alert: Alert): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
  };
  add(alert.subject);
  const d = alert.details ?? {};
  add(d.source);
  for (const key of ['top_sources', 'oldest_batches'] as const) {
    const list = d[key];
    if (Array.isArray(list)) for (const item of list) if (item && typeof item === 'object') add(item.source);
  }
  return out;
}

/**
 * `/api/sources` from a run's pipeline snapshot: pure, bounded. Sources are ranked by
 * rows (most first, ties by name); the first `limit` are listed, and so is every source
 * an alert names however small; the rest are summed in `others`.
 */
export function sourcesAnswer(
  run: RunResult | undefined,
  thresholds: SourceThresholds,
  limit: number,
): SourcesResponse {
  const empty: SourcesResponse = {
    taken_at: null,
    limit,
    threshold_pct: thresholds.overallPct,
    min_rows: null,
    overall: null,
    sources: [],
    others: { sources: 0, total_rows: 0, error_rows: 0 },
  };
  const hourly = run?.pipeline?.hourly;
  if (!run?.pipeline || !hourly) return empty;

  const named = new Map<string, Set<string>>();
  for (const alert of run.alerts) {
    for (const s of alertSources(alert)) {
      const checks = named.get(s) ?? new Set<string>();
      checks.add(alert.check);
      named.set(s, checks);
    }
  }
  const checksNaming = (source: string): string[] => {
    const checks = new Set<string>();
    for (const f of forms(source)) for (const c of named.get(f) ?? []) checks.add(c);
    return [...checks].sort();
  };

  const ranked = [...hourly.sources].sort(
    (a, b) => b.total_rows - a.total_rows || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0),
  );
  const sources: SourceRow[] = [];
  const others = { sources: 0, total_rows: 0, error_rows: 0 };
  for (const [i, s] of ranked.entries()) {
    const alertChecks = checksNaming(s.source);
    if (i >= limit && alertChecks.length === 0) {
      others.sources++;
      others.total_rows += s.total_rows;
      others.error_rows += s.error_rows;
      continue;
    }
    const own = Object.hasOwn(thresholds.own, s.source) ? thresholds.own[s.source] : undefined;
    const threshold = own ?? thresholds.overallPct;
    sources.push({
      ...figures(s),
      source: cut(s.source, MAX_SOURCE_CHARS),
      threshold_pct: threshold,
      own_threshold: own !== undefined,
      in_overall: own === undefined,
      over_threshold: s.judged && s.error_rate_pct !== null && s.error_rate_pct > threshold,
      alert_checks: alertChecks,
    });
  }
  return {
    ...empty,
    taken_at: run.pipeline.taken_at,
    min_rows: hourly.min_rows,
    overall: figures(hourly.overall),
    sources,
    others,
  };
}

function figures(f: SourceBucketFigures): SourceBucketFigures {
  return {
    hour_bucket: f.hour_bucket,
    judged: f.judged,
    total_rows: f.total_rows,
    error_rows: f.error_rows,
    skipped_rows: f.skipped_rows,
    error_rate_pct: f.error_rate_pct,
    dedupe_rate_pct: f.dedupe_rate_pct,
  };
}
