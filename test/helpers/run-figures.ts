/** One hour bucket's figures as a pipeline snapshot holds them (`HourlyFigures`), rates to 0.01 %. */
export const hourlyFigures = (error: number, skipped: number, total = 1000) => ({
  hour_bucket: '2025-01-04T10:00:00Z',
  judged: true,
  total_rows: total,
  error_rows: error,
  skipped_rows: skipped,
  error_rate_pct: total ? Math.round((10000 * error) / total) / 100 : null,
  dedupe_rate_pct: total ? Math.round((10000 * skipped) / total) / 100 : null,
});
