import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CHECK_LIST } from './index.js';
import type { CheckDefinition } from './types.js';

/** The generated part of docs/checks.md lies between these lines; the rest is prose, kept as written. */
export const BEGIN_MARKER = '<!-- BEGIN GENERATED: checks -->';
export const END_MARKER = '<!-- END GENERATED: checks -->';

/** The prose written around the markers when docs/checks.md does not exist yet. */
const NEW_DOC = `# Checks

Every check Sentinel runs, generated from the registry (\`src/checks/index.ts\`) and each
check's own file: edit those, then run \`npm run docs:checks\`. Settings go under
\`checks.<name>\` in the configuration file; every one has a default.

${BEGIN_MARKER}
${END_MARKER}
`;

interface JsonField {
  type?: string;
  default?: unknown;
  description?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
}

/** `number, > 0, ≤ 3600`: a setting's type and range, from its JSON Schema. */
function rangeText(f: JsonField): string {
  const parts = [f.type ?? 'value'];
  if (f.exclusiveMinimum !== undefined) parts.push(`> ${f.exclusiveMinimum}`);
  if (f.minimum !== undefined) parts.push(`≥ ${f.minimum}`);
  if (f.maximum !== undefined) parts.push(`≤ ${f.maximum}`);
  if (f.minLength !== undefined && f.minLength > 0) parts.push('not empty');
  return parts.join(', ');
}

/** Prose for Markdown: `<name>` would be taken for an HTML tag and vanish. */
const md = (text: string): string => text.replace(/</g, '&lt;');
/** Prose for a table cell: also no `|` or line break. */
const cell = (text: string): string => md(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');

function checkSection(check: CheckDefinition): string[] {
  const schema = z.toJSONSchema(check.settings, { io: 'input' }) as { properties?: Record<string, JsonField> };
  const settings = Object.entries(schema.properties ?? {}).map(([key, f]) => {
    const shown = `\`${JSON.stringify(f.default)}\``;
    return `| \`${key}\` | ${shown} | ${cell(rangeText(f))} | ${cell(f.description ?? '')} |`;
  });
  const measurements = check.measurements.map((m) => {
    const perfdata = m.perfdata ? `\`${m.perfdata.label}\` (${m.perfdata.uom || 'count'})` : '—';
    return `| \`${m.key}\` | ${cell(m.meaning)} | ${perfdata} |`;
  });
  const perSource = 'yes (alerts name the source; `silence add --source` matches them)';
  const databaseFree = 'no (it still runs while the database is unreachable or locked)';
  return [
    `### ${check.name}`,
    '',
    md(check.description),
    '',
    `- Per source: ${check.perSource ? perSource : 'no'}`,
    `- Needs the database: ${check.needsDatabase ? 'yes' : databaseFree}`,
    `- What to do when it alerts: ${md(check.remediation)}`,
    '',
    `Settings (\`checks.${check.name}\`):`,
    '',
    '| Setting | Default | Type | Meaning |',
    '| --- | --- | --- | --- |',
    ...settings,
    ...(measurements.length > 0
      ? [
          '',
          'Measurements (`sentinel_check_measurement{check, measurement}` in /metrics):',
          '',
          '| Measurement | Meaning | Nagios perfdata |',
          '| --- | --- | --- |',
          ...measurements,
        ]
      : []),
  ];
}

/** The generated reference: an index, then one section per check in registry order. */
export function renderChecksReference(checks: readonly CheckDefinition[] = CHECK_LIST): string {
  return [
    '## Reference',
    '',
    'Generated from the registry (`src/checks/index.ts`) by `npm run docs:checks`; edit the check files, not this.',
    '',
    '| Check | Per source | Needs the database | What it alerts on |',
    '| --- | --- | --- | --- |',
    ...checks.map((c) => {
      const flags = `${c.perSource ? 'yes' : 'no'} | ${c.needsDatabase ? 'yes' : 'no'}`;
      return `| [${c.name}](#${c.name}) | ${flags} | ${cell(c.description)} |`;
    }),
    '',
    ...checks.flatMap((c) => [...checkSection(c), '']),
  ]
    .join('\n')
    .trimEnd();
}

/**
 * `markdown` with the text between the markers replaced by `generated`; everything
 * outside them is kept byte for byte (others write the prose). Throws when the
 * markers are missing or out of order rather than guessing where the reference goes.
 */
export function replaceGenerated(markdown: string, generated: string): string {
  const begin = markdown.indexOf(BEGIN_MARKER);
  const end = markdown.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`expected the lines ${BEGIN_MARKER} and ${END_MARKER}, in that order`);
  return `${markdown.slice(0, begin + BEGIN_MARKER.length)}\n${generated}\n${markdown.slice(end)}`;
}

/** docs/checks.md as it should be: `current` (or a new file's intro) with the reference regenerated. */
export function checksDoc(current: string | undefined): string {
  return replaceGenerated(current ?? NEW_DOC, renderChecksReference());
}

/** Regenerates the file at `path` (`npm run docs:checks`); true when it changed. */
export function writeChecksDoc(path: string): boolean {
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const next = checksDoc(current);
  if (next === current) return false;
  writeFileSync(path, next);
  return true;
}
