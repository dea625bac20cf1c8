import { startEmbeddedPostgres } from '../src/db/embedded.js';
import pg from 'pg';
const t = Date.now();
const s = await startEmbeddedPostgres();
console.log('started', s.url.replace(/:[^:@]+@/, ':***@'), Date.now() - t);
const c = new pg.Client(s.url); await c.connect(); console.log((await c.query('select version(), current_setting(\'fsync\')')).rows); await c.end();
if (process.argv[2] === 'exit') { process.exitCode = 2; console.log('leaving without stop'); }
else if (process.argv[2] === 'throw') { throw new Error('boom'); }
else if (process.argv[2] === 'sig') { setInterval(() => {}, 1000); process.kill(process.pid, 'SIGTERM'); }
else { await s.stop(); console.log('stopped', Date.now() - t); }
