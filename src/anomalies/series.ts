import type { HourlyStats, SourceSeries } from './types.js';

/** Groups hourly rows (e.g. read from the hourly rollup) into one series per source. */
export function seriesBySource(
  rows: Iterable<HourlyStats & { source: string }>,
  dataStart?: number,
): Map<string, SourceSeries> {
  const out = new Map<string, { source: string; dataStart?: number; hours: Map<number, HourlyStats> }>();
  for (const row of rows) {
    let s = out.get(row.source);
    if (!s) {
      s = { source: row.source, hours: new Map() };
      if (dataStart !== undefined) s.dataStart = dataStart;
      out.set(row.source, s);
    }
    s.hours.set(row.hour, row);
  }
  return out;
}
