import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { METRICS } from '../../src/metrics/names.js';

describe('README metric list', () => {
  it('documents every exported metric with its type', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const missing = METRICS.filter((m) => !readme.includes(`| \`${m.name}\` | ${m.type} |`)).map((m) => m.name);
    expect(missing).toEqual([]);
  });
});
