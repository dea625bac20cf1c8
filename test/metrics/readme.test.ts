import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/names.js';

describe('docs/metrics.md metric list', () => {
  it('documents every exported metric with its type, labels and meaning exactly as the contract says', () => {
    const readme = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const row = (m: (typeof METRICS)[number]): string =>
      `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(', ') || '—'} | ` +
      `${m.help.replace(/\|/g, '\\|')} |`;
    const missing = METRICS.filter((m) => !readme.includes(row(m))).map((m) => m.name);
    expect(missing).toEqual([]);
  });
});
