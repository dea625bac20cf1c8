import { ConfigError } from '../../src/config/load.js';

/** The problems of the ConfigError `promise` rejects with; fails when it resolves or throws something else. */
export async function problemsOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
