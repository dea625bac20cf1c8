import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BEGIN_MARKER, checksDoc, END_MARKER, renderChecksReference, replaceGenerated } from '../../src/checks/docs.js';
import { CHECK_LIST } from '../../src/checks/index.js';

const DOC = new URL('../../docs/checks.md', import.meta.url);

describe('docs/checks.md', () => {
  it('is up to date with the registry (run `npm run docs:checks` when this fails)', () => {
    const current = readFileSync(DOC, 'utf8');
    expect(checksDoc(current)).toBe(current);
  });

  it('documents every check with its settings, defaults and remediation', () => {
    const reference = renderChecksReference();
    for (const check of CHECK_LIST) {
      expect(reference).toContain(`### ${check.name}\n`);
      expect(reference).toContain(`Settings (\`checks.${check.name}\`)`);
    }
    expect(reference).toContain('| `lookback_days` | `7` | integer, ≥ 1, ≤ 90 |');
    expect(reference).toContain('| `threshold_minutes` | `10` | number, > 0, ≤ 527040 |');
    expect(reference).toContain('| `postgrest_role` | `"authenticator"` |');
    // `<name>` would be an HTML tag to Markdown.
    expect(reference).toContain('sources.&lt;name>.error_spike_threshold_pct');
    expect(reference).not.toMatch(/<name>/);
  });

  it('only ever writes between the markers', () => {
    const prose = `# Intro\n\nWritten by hand.\n\n${BEGIN_MARKER}\nold\n${END_MARKER}\n\n## After\n\nAlso by hand.\n`;
    const next = replaceGenerated(prose, 'NEW');
    expect(next).toBe(
      `# Intro\n\nWritten by hand.\n\n${BEGIN_MARKER}\nNEW\n${END_MARKER}\n\n## After\n\nAlso by hand.\n`,
    );
    expect(replaceGenerated(next, 'NEW')).toBe(next);
    expect(() => replaceGenerated('# No markers\n', 'NEW')).toThrow(/BEGIN GENERATED: checks/);
    expect(() => replaceGenerated(`${END_MARKER}\n${BEGIN_MARKER}\n`, 'NEW')).toThrow(/in that order/);
  });

  it('starts a missing file with an intro and the markers', () => {
    const created = checksDoc(undefined);
    expect(created).toMatch(/^# Checks\n/);
    expect(created).toContain(`${BEGIN_MARKER}\n${renderChecksReference()}\n${END_MARKER}\n`);
  });
});
