/**
 * The V8 settings the `sentinel` binary gives itself when it is going to run for good
 * (`--loop`, `serve`, `demo`), so that the command users run needs no node flags.
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
 *
 * A one-shot command is left with node's defaults: it exits long before a bigger young
 * generation costs anything, and its start-up (module loading) scavenges less with it.
 * This module imports nothing at load time (`node:v8` alone costs a few ms of a cold
 * start), so the bin can load it for every command.
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
 * Whether the command line asks for a process that runs until stopped: `--loop`,
 * `serve` or `demo`. A word that only looks like one (an option's value "serve")
 * makes a one-shot run take the long-running settings, which is harmless.
 */
export function runsForGood(args: readonly string[]): boolean {
  return args.some((a) => a === '--loop' || a === 'serve' || a === 'demo');
}

/** The V8 flags for this command line (sentinel's arguments, without node and the script). */
export function v8DefaultsFor(
  args: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): readonly string[] {
  return runsForGood(args) && !userSizesYoungGeneration(execArgv, nodeOptions) ? V8_DEFAULTS : [];
}

/**
 * Sets {@link v8DefaultsFor} this process's command line and returns the flags it set.
 * Call it before the heavy imports: the young generation then stays small from the start.
 */
export async function applyV8Defaults(
  proc: Pick<NodeJS.Process, 'argv' | 'execArgv' | 'env'> = process,
): Promise<readonly string[]> {
  const flags = v8DefaultsFor(proc.argv.slice(2), proc.execArgv, proc.env.NODE_OPTIONS);
  if (flags.length === 0) return flags;
  const { setFlagsFromString } = await import('node:v8');
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
