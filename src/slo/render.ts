import { pct1, trimNumber } from '../util/format.js';
import { MAX_CHARS, oneLine, tableLines } from '../util/text.js';
import { FORMULAS, type SloReport, type SloResult } from './compute.js';

/** `sentinel slo`: a table, the verdict, then one line per formula. */
export function renderSloHuman(report: SloReport): string {
  const minute = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')}Z`;
  const header = ['SLO', 'value', 'target', 'met', 'budget left', 'burn rate'];
  const rows = report.slos.map((s) => [
    s.name,
    valueText(s),
    s.target,
    s.met === null ? '-' : s.met ? 'yes' : 'NO',
    s.error_budget_remaining_pct === null ? '-' : `${pct1(s.error_budget_remaining_pct)}%`,
    s.burn_rate === null ? '-' : s.burn_rate.toFixed(2),
  ]);
  const missed = report.slos.filter((s) => s.met === false).map((s) => s.name);
  return [
    `SLO report for ${oneLine(report.environment, MAX_CHARS.name)}: ` +
      `last ${report.days} day${report.days === 1 ? '' : 's'} ` +
      `(${minute(report.from)} to ${minute(report.to)}, database clock)`,
    '',
    ...tableLines([header, ...rows], { max: MAX_CHARS.name }),
    '',
    missed.length ? `Missed: ${missed.join(', ')}` : 'Every SLO with data is met.',
    '',
    'Formulas:',
    ...report.slos.map((s) => `  ${FORMULAS[s.name]}`),
  ].join('\n');
}

function valueText(s: SloResult): string {
  // The wording of docs/slo.md for every SLO; why there is none is in the JSON's detail.note.
  if (s.value === null) return 'no data';
  const d = s.detail;
  const two = s.value.toFixed(2);
  switch (s.name) {
    case 'processing_time':
      return `${two}% within 5m, p95 ${trimNumber(Number(d.p95_minutes))}m (${d.batches} batches)`;
    case 'error_rate':
      return `${two}% of ${d.hours_judged} hours, overall ${pct1(Number(d.overall_error_rate_pct))}%`;
    case 'schema_cache':
      return `${two}% of ${d.probes} probes`;
    case 'dedupe_rate':
      return `${two}%, ${d.hours_above_investigate} hours > 50%`;
  }
}
