import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

/**
 * docs/opentelemetry.md against what Sentinel does: the variables its table names are the ones
 * src/config/otlp.ts reads (and no others), the variables it says the SDK reads are read by the
 * installed exporter, its flags exist on the built command line, and its error lines are the ones
 * the built CLI prints.
 */
const read = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');
const DOC = read('../docs/opentelemetry.md');

/** The text of the `### heading` section, up to the next heading of any level. */
function section(heading: string): string {
  const start = DOC.indexOf(`\n### ${heading}\n`);
  if (start < 0) throw new Error(`docs/opentelemetry.md has no "### ${heading}" section`);
  const rest = DOC.slice(start + heading.length + 6);
  const end = rest.search(/\n#{2,3} /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The `OTEL_…` names in the first cell of each table row of `text`. */
function tableVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`(OTEL_[A-Z_]+)`/g)) if (m[1]) names.add(m[1]);
  }
  return names;
}

/** Code without its comments, so a name only mentioned in a comment does not count as read. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
}

const SENTINEL_TABLE = tableVariables(section('Environment variables Sentinel reads'));
const SDK_TABLE = tableVariables(section('Read by the OpenTelemetry SDK itself'));
const CODE_VARIABLES = new Set(
  // Read as a string (`firstSet(env, 'OTEL_…')`, a list of names) or a property (`env.OTEL_…`).
  [...withoutComments(read('../src/config/otlp.ts')).matchAll(/(?:['"`]|\benv\.)(OTEL_[A-Z_]+)\b/g)].map(
    (m) => m[1] ?? '',
  ),
);

describe('docs/opentelemetry.md', () => {
  it('lists exactly the OTEL_* variables src/config/otlp.ts reads', () => {
    // A table that parsed to nothing would make the comparison below vacuous.
    expect(CODE_VARIABLES.size).toBeGreaterThan(10);
    expect([...SENTINEL_TABLE].sort()).toEqual([...CODE_VARIABLES].sort());
  });

  it('names only variables the installed OpenTelemetry exporter reads as read by the SDK', () => {
    const dir = new URL('../node_modules/@opentelemetry/otlp-exporter-base/build/src/configuration/', import.meta.url);
    const sdk = readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(new URL(f, dir), 'utf8'))
      .join('\n');
    expect(SDK_TABLE.size).toBeGreaterThanOrEqual(8);
    for (const name of SDK_TABLE) {
      // The signal-specific names are built from the signal: `OTEL_EXPORTER_OTLP_${signalIdentifier}_…`.
      const specific = name.replace(/^OTEL_EXPORTER_OTLP_METRICS_/, 'OTEL_EXPORTER_OTLP_${signalIdentifier}_');
      expect(sdk, name).toContain(specific === name ? `'${name}'` : `\`${specific}\``);
      // …and Sentinel does not read them itself (they would belong in the other table).
      expect(CODE_VARIABLES.has(name), name).toBe(false);
    }
  });

  it('names only flags the built command line has, the --otlp-* ones on both sentinel and serve', async () => {
    const [top, serve] = await Promise.all([runCli(['--help'], {}), runCli(['serve', '--help'], {})]);
    expect(top.code).toBe(0);
    expect(serve.code).toBe(0);
    const flags = new Set([...DOC.matchAll(/(?<![\w-])--[a-z][a-z-]+/g)].map((m) => m[0]));
    // Not Sentinel's: the flag of the Prometheus a recipe writes to (--web.enable-remote-write-receiver).
    flags.delete('--web');
    const otlp = [...flags].filter((f) => f.startsWith('--otlp-'));
    expect(otlp.sort()).toEqual(['--otlp-endpoint', '--otlp-protocol', '--otlp-temporality']);
    for (const flag of otlp) {
      expect(top.stdout, flag).toContain(`${flag} <`);
      expect(serve.stdout, flag).toContain(`${flag} <`);
    }
    for (const flag of flags) expect(`${top.stdout}\n${serve.stdout}`, flag).toContain(flag);
  });

  it('quotes the configuration errors as the built CLI prints them, header values masked', async () => {
    const env = { DATABASE_URL: 'postgres://sentinel@127.0.0.1:1/none' };
    const runs = await Promise.all([
      runCli([], {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cret-value,Authorization',
        OTEL_EXPORTER_OTLP_TIMEOUT: '10s',
        OTEL_METRIC_EXPORT_INTERVAL: '500',
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'deltas',
        OTEL_RESOURCE_ATTRIBUTES: 'team=%zz',
      }),
      runCli(['serve', '--otlp-protocol', 'http/xml'], { ...env, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: ':4318' }),
      runCli(['--otlp-protocol', 'http/json'], env),
    ]);
    const lines = runs.flatMap((r) => r.stderr.split('\n').filter((l) => l.startsWith('sentinel: config error: ')));
    for (const run of runs) expect(run.code).toBe(3);
    expect(lines).toHaveLength(10);
    for (const line of lines) expect(DOC, line).toContain(`\n${line}\n`);
    expect(runs[0]?.stderr).not.toContain('s3cret-value');
  });
});
