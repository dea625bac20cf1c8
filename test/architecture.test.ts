/**
 * The shape of src/, pinned: no import circle between files, and no module importing
 * one above it. The layers are the reading order of docs/ARCHITECTURE.md: a newcomer
 * can read src/ bottom-up without meeting a name that is defined later.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/**
 * Lowest first. A module may import its own files and any module of a LOWER layer;
 * modules in one layer do not import each other.
 */
const LAYERS: string[][] = [
  ['util', 'types'],
  ['log', 'anomalies'],
  ['db', 'state'],
  ['checks', 'notifiers', 'postgrest'],
  ['config'],
  ['alerting', 'history', 'remediation', 'report'],
  ['metrics', 'slo'],
  ['run', 'replicas'],
  ['loop'],
  ['server'],
  ['runtime'],
  ['commands', 'demo'],
  ['cli-main', 'client'],
  ['cli'],
];

interface Import {
  from: string;
  to: string;
  /** `import type …` (erased at run time). */
  typeOnly: boolean;
}

function sourceFiles(dir: string, ext = /\.ts$/): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name), ext) : ext.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const pattern =
    /^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(pattern)) {
    const spec = m[3] ?? m[4]!;
    const to = normalize(join(dirname(file), spec.replace(/\.js$/, '.ts')));
    found.push({ from: file, to, typeOnly: m[2] !== undefined });
  }
  return found;
}

/** The module a file belongs to: its folder under src/, or its own name for a top-level file. */
function moduleOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length > 1 ? rel[0]! : rel[0]!.replace(/\.ts$/, '');
}

const files = sourceFiles(SRC);
/**
 * Imports that exist at run time. `import type` is left out on purpose: a check's
 * context is typed with the whole configuration (`checks/types.ts` names
 * `SentinelConfig`, whose `checks:` section the registry builds), a reference that
 * is erased when compiled and costs no load order.
 */
const imports = files.flatMap(importsOf).filter((i) => !i.typeOnly);
const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));
const short = (file: string) => relative(ROOT, file);

describe('architecture', () => {
  it('every module of src/ has a layer', () => {
    const modules = [...new Set(files.map(moduleOf))].sort();
    expect(modules.filter((m) => !layerOf.has(m))).toEqual([]);
  });

  it('no module imports one of its own layer or above it', () => {
    const upward = imports
      .filter((i) => moduleOf(i.from) !== moduleOf(i.to))
      .filter((i) => (layerOf.get(moduleOf(i.to)) ?? 0) >= (layerOf.get(moduleOf(i.from)) ?? 0))
      .map((i) => `${short(i.from)} -> ${short(i.to)}`);
    expect(upward).toEqual([]);
  });

  it('no import circle between files', () => {
    const graph = new Map<string, string[]>();
    for (const i of imports) graph.set(i.from, [...(graph.get(i.from) ?? []), i.to]);
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (file: string): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].map(short).join(' -> '));
        return;
      }
      state.set(file, 'open');
      path.push(file);
      for (const next of graph.get(file) ?? []) visit(next);
      path.pop();
      state.set(file, 'done');
    };
    for (const f of files) visit(f);
    expect(circles).toEqual([]);
  });

  it('no line of code, tests or the web app is longer than 120 characters', () => {
    const roots = ['src', 'test', 'web/src', 'bench'].map((d) => join(ROOT, d));
    const long = roots
      .flatMap((d) => sourceFiles(d, /\.(ts|tsx|css)$/))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .flatMap((line, i) => (line.length > 120 ? [`${short(f)}:${i + 1} (${line.length})`] : [])),
      );
    expect(long).toEqual([]);
  });
});
