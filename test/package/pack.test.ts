/**
 * What `npm pack` would ship (issue 16): the package's own name, the `sentinel` bin, what the
 * installed command reads at run time (dist/, the migrations, the intake schema, the page) and
 * nothing test-only. `--ignore-scripts`: `npm test` has just built dist/ (prepack would build it
 * again, which is what a real `npm pack` does).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

interface PackResult {
  name: string;
  version: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string; size: number }>;
}

describe('the npm package', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    private?: boolean;
    bin: Record<string, string>;
    engines: { node: string };
    scripts: Record<string, string>;
  };
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'silent' },
  });
  const [packed] = JSON.parse(out) as PackResult[];
  const paths = packed!.files.map((f) => f.path);

  // The npm name `sentinel` belongs to an unrelated package.
  it('has a name of its own, the sentinel bin, engines and a prepack build', () => {
    expect(pkg.name).toBe('@dragonfly-sre/sentinel');
    expect(pkg.private).toBeUndefined();
    expect(pkg.bin).toEqual({ sentinel: 'dist/cli.js' });
    expect(pkg.engines.node).toMatch(/^>=\d+/);
    expect(pkg.scripts.prepack).toBe('npm run build');
    expect(packed!.name).toBe(pkg.name);
  });

  it('carries what the installed command reads at run time', () => {
    for (const needed of [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'dist/cli.js',
      'dist/cli-main.js',
      'dist/web/index.html',
      'sql/intake.sql',
      'deploy/sentinel.service',
      'prometheus/sentinel-rules.yml',
      'grafana/dashboards/sentinel-overview.json',
      'datadog/sentinel-overview.json',
      'cloudwatch/sentinel-overview.json',
    ])
      expect(paths, needed).toContain(needed);
    const migrations = paths.filter((p) => p.startsWith('supabase/migrations/') && p.endsWith('.sql'));
    expect(migrations.length).toBeGreaterThanOrEqual(5);
  });

  it('carries nothing test-only, no sources and no source maps', () => {
    const top = ['package.json', 'README.md', 'CHANGELOG.md', 'prometheus/sentinel-rules.yml'];
    const dirs = ['dist/', 'sql/', 'supabase/migrations/', 'deploy/', 'grafana/', 'datadog/', 'cloudwatch/'];
    const allowed = { test: (p: string) => top.includes(p) || dirs.some((d) => p.startsWith(d)) };
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(test|tests|bench|src)\//.test(p) || /\.test\.|\.map$/.test(p))).toEqual([]);
    console.log(
      `npm pack: ${packed!.entryCount} files, ${(packed!.size / 1024).toFixed(0)} KiB packed, ` +
        `${(packed!.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
    );
  });
});
