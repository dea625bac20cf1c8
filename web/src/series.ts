import type { BatchPerformanceResponse } from '../../src/server/api-types.js';
import { formatHour, type Zone } from './format.js';

export interface HourPoint {
  hourMs: number;
  label: string;
  completed: number;
  failed: number;
  errorRate: number | null;
}

/** One point per UTC hour of the window, oldest first; hours without batches are zeros. */
/** Pure: table-tested in test/web/format.test.ts. */
export function hourPoints(perf: BatchPerformanceResponse, now: number, zone: Zone): HourPoint[] {
  const byHour = new Map<number, (typeof perf.rows)[number]>();
  for (const r of perf.rows) byHour.set(Math.floor(Date.parse(r.hour_bucket) / 3_600_000), r);
  const current = Math.floor(now / 3_600_000);
  const points: HourPoint[] = [];
  for (let h = current - perf.hours + 1; h <= current; h++) {
    const r = byHour.get(h);
    points.push({
      hourMs: h * 3_600_000,
      label: formatHour(h * 3_600_000, zone, perf.hours > 24),
      completed: r?.completed_batches ?? 0,
      failed: r?.failed_batches ?? 0,
      errorRate: r?.error_rate_pct ?? null,
    });
  }
  return points;
}
