import { setFlagsFromString } from 'node:v8';

/**
 * The V8 settings the `sentinel` binary gives itself, so that the command users run
 * (`sentinel --loop`, `sentinel serve`, `node dist/cli.js …`) needs no node flags.
 *
 * Young generation: V8 doubles its two semi-spaces, from 1 MB up to 16 MB each, once
 * enough objects survive its scavenges. A loop's runs do that within a few hundred runs,
 * and the resident size then sits ~30 MB higher for good (bench/README.md, "Loop RSS").
 * `--max-semi-space-size` would cap it, but V8 reads that flag only when the heap is
 * created, before any of our code runs: set from here it changes nothing (measured on
 * Node 20). `--semi-space-growth-factor` is read each time the young generation would
 * grow, so a factor of 1 set at startup keeps it at its initial 1 MB semi-spaces: the
 * same heap as `node --max-semi-space-size=1`. test/cli/v8-flags.test.ts checks that this
 * still holds on the Node it runs on.
 */
export const V8_DEFAULTS: readonly string[] = ['--semi-space-growth-factor=1'];

/** The node/V8 options that size the young generation; V8 takes `_` for `-` in flag names. */
const YOUNG_GENERATION_OPTION = /^--(?:(?:max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)(?:=|$)/;

/**
 * Whether the user sized the young generation themselves, on node's command line
 * (`node --max-semi-space-size=8 dist/cli.js`, or a shebang's flags) or in NODE_OPTIONS.
 * Their choice wins: Sentinel then sets nothing.
 */
export function userSizesYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const options = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return options.some((o) => YOUNG_GENERATION_OPTION.test(o));
}

/**
 * Applies {@link V8_DEFAULTS} unless the user sized the young generation. Returns
 * the flags it set (none when the user's own apply). Call it first thing in the bin.
 */
export function applyV8Defaults(
  proc: Pick<NodeJS.Process, 'execArgv' | 'env'> = process,
  setFlags: (flags: string) => void = setFlagsFromString,
): readonly string[] {
  if (userSizesYoungGeneration(proc.execArgv, proc.env.NODE_OPTIONS)) return [];
  for (const flag of V8_DEFAULTS) setFlags(flag);
  return V8_DEFAULTS;
}
