import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirePart } from '../helpers/parts.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * promtool from $PROMTOOL, PATH, or where .ci/run unpacks Debian's prometheus package
 * (.ci/tools/usr/bin/promtool); undefined when none is found.
 */
export function findPromtool(): string | undefined {
  if (process.env.PROMTOOL) return process.env.PROMTOOL;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool');
  }
  const unpacked = join(ROOT, '.ci', 'tools', 'usr', 'bin', 'promtool');
  return existsSync(unpacked) ? unpacked : undefined;
}

export const PROMTOOL = findPromtool();

/**
 * Whether the promtool tests run: CI provides promtool and fails without it; on a laptop
 * without it they are skipped with a printed reason.
 */
export const havePromtool = (): boolean =>
  requirePart(
    'promtool',
    !!PROMTOOL,
    "set PROMTOOL, or install Debian's prometheus package (.ci/run unpacks it into .ci/tools)",
  );

/** Runs promtool (in `cwd`, default prometheus/) with optional stdin; status and both outputs. */
export function promtool(
  args: string[],
  options: { cwd?: string; input?: string } = {},
): { status: number | null; stdout: string; stderr: string; output: string } {
  const r = spawnSync(PROMTOOL!, args, {
    cwd: options.cwd ?? join(ROOT, 'prometheus'),
    encoding: 'utf8',
    timeout: 60_000,
    input: options.input,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}${r.stderr}` };
}
