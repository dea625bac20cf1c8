import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runsForGood, userSizesYoungGeneration, V8_DEFAULTS, v8DefaultsFor } from '../../src/util/v8-flags.js';
import { runCli } from '../helpers/cli.js';

/**
 * In `--loop`, `serve` and `demo` the bin keeps V8's young generation at its initial
 * size (bench/README.md, "Loop RSS") unless the user sized it; one-shot commands keep
 * node's defaults. Flags set at runtime only count if V8 still reads them, so the bin's
 * cases look at the heap itself, not at our code's intentions.
 */

describe('userSizesYoungGeneration: the user’s own flags win', () => {
  it.each([
    [[], undefined, false],
    [[], '', false],
    [['--max-old-space-size=512', '--enable-source-maps'], '--inspect=0', false],
    [['--max-semi-space-size=8'], undefined, true],
    [['--max_semi_space_size=8'], undefined, true],
    [['--min-semi-space-size', '4'], undefined, true],
    [['--semi-space-growth-factor=2'], undefined, true],
    [[], '--max-semi-space-size=16', true],
    [[], '--enable-source-maps  --max-semi-space-size=16', true],
    [['--max-semi-space-sizes=8'], '--semi-space', false],
  ] as const)('execArgv %j, NODE_OPTIONS %j: %s', (execArgv, nodeOptions, expected) => {
    expect(userSizesYoungGeneration(execArgv, nodeOptions)).toBe(expected);
  });

  it('v8DefaultsFor: the defaults for a long-running command, unless the user set their own', () => {
    expect(v8DefaultsFor(['--loop', '--json'], [], undefined)).toEqual(V8_DEFAULTS);
    expect(v8DefaultsFor(['serve', '--listen', '127.0.0.1:9464'], [], '')).toEqual(V8_DEFAULTS);
    expect(v8DefaultsFor(['-c', 'sentinel.yaml', 'serve'], ['--enable-source-maps'], undefined)).toEqual(V8_DEFAULTS);
    expect(v8DefaultsFor(['serve'], [], '--max-semi-space-size=4')).toEqual([]);
    expect(v8DefaultsFor(['--loop'], ['--max-semi-space-size=4'], undefined)).toEqual([]);
    expect(v8DefaultsFor(['--json'], [], undefined)).toEqual([]);
  });

  it.each([
    [['--loop'], true],
    [['demo'], true],
    [['serve', '--help'], true],
    [['--json'], false],
    [['batches', 'stuck'], false],
    [['--help'], false],
  ] as const)('runsForGood(%j): %s', (args, expected) => {
    expect(runsForGood(args)).toBe(expected);
  });
});

/**
 * Loaded with `node --import` before the bin: at exit it keeps ~20 MB of small objects
 * alive through many scavenges (which grows a young generation that is allowed to
 * grow) and reports the young generation's size (bytes) before and after.
 */
const PROBE = `
import { getHeapSpaceStatistics } from 'node:v8';
import { writeSync } from 'node:fs';
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const before = newSpace();
process.on('exit', () => {
  const keep = [];
  for (let i = 0; i < 400_000; i++) keep.push({ i, text: 'survivor ' + i });
  writeSync(2, 'young-generation ' + JSON.stringify({ before, after: newSpace(), kept: keep.length }) + '\\n');
});
`;

let dir: string;
let probe: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sentinel-v8-flags-'));
  probe = join(dir, 'young-generation.mjs');
  await writeFile(probe, PROBE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `node [nodeArgs] --import PROBE dist/cli.js args`: the young generation's size before and after. */
async function youngGeneration(
  args: string[],
  nodeArgs: string[],
  nodeOptions: string,
): Promise<{ before: number; after: number; kept: number }> {
  const r = await runCli(args, { NODE_OPTIONS: nodeOptions }, { nodeArgs: [...nodeArgs, '--import', probe] });
  expect(r.code, r.stderr).toBe(0);
  const line = r.stderr.split('\n').find((l) => l.startsWith('young-generation '));
  if (!line) throw new Error(`no young-generation line on stderr: ${r.stderr}`);
  return JSON.parse(line.slice('young-generation '.length)) as { before: number; after: number; kept: number };
}

/**
 * Two semi-spaces of 1 MB: what `node --max-semi-space-size=1` allows. `space_size` is the
 * committed size, which also counts the second semi-space only while it is committed, so
 * a young generation that does not grow reports 1 or 2 MB; one that grows, 16 MB or more.
 */
const CAPPED = 2 * 1024 * 1024;

describe('the bin and V8’s young generation', () => {
  // `serve --help` takes the long-running path through the bin and exits at once.
  it('serve, with no node flags: it stays as small as under `node --max-semi-space-size=1`', async () => {
    const capped = await youngGeneration(['--help'], ['--max-semi-space-size=1'], '');
    expect(capped.after).toBeLessThanOrEqual(CAPPED);
    const y = await youngGeneration(['serve', '--help'], [], '');
    expect(y.kept).toBe(400_000);
    expect(y.after).toBeLessThanOrEqual(CAPPED);
  });

  it('serve: a user’s --max-semi-space-size (NODE_OPTIONS or node’s command line) wins', async () => {
    const viaEnv = await youngGeneration(['serve', '--help'], [], '--max-semi-space-size=8');
    expect(viaEnv.after).toBeGreaterThan(CAPPED);
    const viaArgs = await youngGeneration(['serve', '--help'], ['--max-semi-space-size=8'], '');
    expect(viaArgs.after).toBeGreaterThan(CAPPED);
  });

  it('a one-shot command keeps node’s defaults: the young generation grows', async () => {
    const y = await youngGeneration(['--help'], [], '');
    expect(y.after).toBeGreaterThan(CAPPED);
  });
});
