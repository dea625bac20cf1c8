import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The state directory, made ready once at startup: a directory Sentinel can write
 * in, created (0700) with its missing parents when needed, or a one-line reason
 * why not. Node's `mkdir(…, { recursive: true })` loops forever when the file
 * system answers ENOENT for a directory whose parent exists (`/proc/1/nope`), so
 * directories are created one level at a time here, from the first existing
 * ancestor down, and every step is bounded by a deadline.
 */

/** A state directory that cannot be used; `message` is one line without the setting's name. */
export class StateDirError extends Error {}

/** Longer than any healthy local or network file system needs for a stat and a mkdir. */
const DEFAULT_DEADLINE_MS = 10_000;

/** Creates `dir` and its missing parents (mode 0700) without recursive mkdir; throws StateDirError. */
export async function ensureDirectory(dir: string, options: { deadlineMs?: number } = {}): Promise<void> {
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StateDirError(`${dir}: the file system did not answer within ${deadlineMs / 1000}s`)),
      deadlineMs,
    );
    timer.unref();
  });
  try {
    await Promise.race([prepare(dir), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function prepare(dir: string): Promise<void> {
  // Walk up to the first ancestor that exists; `missing` is what to create, outermost first.
  const missing: string[] = [];
  let existing = dir;
  for (;;) {
    const info = await stat(existing).catch((err: NodeJS.ErrnoException) => err);
    if (!(info instanceof Error)) {
      if (!info.isDirectory())
        throw new StateDirError(
          missing.length === 0 ? `${dir} is not a directory` : `cannot create ${dir}: ${existing} is not a directory`,
        );
      break;
    }
    // ENOTDIR: a component is a file; walking up finds it and says so.
    if (info.code !== 'ENOENT' && info.code !== 'ENOTDIR')
      throw new StateDirError(`cannot use ${dir}: ${reason(info)}`);
    const parent = dirname(existing);
    if (parent === existing) throw new StateDirError(`cannot create ${dir}: no part of the path exists`);
    missing.unshift(existing);
    existing = parent;
  }
  try {
    await access(existing, constants.W_OK | constants.X_OK);
  } catch (err) {
    const what = missing.length === 0 ? `${dir} is not writable` : `cannot create ${dir}: ${existing} is not writable`;
    throw new StateDirError(`${what} (${reason(err as NodeJS.ErrnoException)})`);
  }
  for (const path of missing) {
    try {
      await mkdir(path, { mode: 0o700 });
    } catch (err) {
      // Another process created it in the meantime: fine.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(path)).isDirectory()) continue;
      throw new StateDirError(`cannot create ${path}: ${reason(err as NodeJS.ErrnoException)}`);
    }
  }
}

function reason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOENT':
      return 'the file system does not allow creating it (ENOENT)';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return err.code ?? err.message;
  }
}
