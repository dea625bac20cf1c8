/**
 * `npm run eval`: the labelled anomaly evaluation (issue 15). Prints, per seed, Sentinel's detector,
 * the plain hour-of-week median/MAD baseline and today's static checks side by side.
 * Usage: node dist-bench/bench/anomalies/run.js [--seed N]... [--sensitivity S] [--episodes] [--verbose]
 */
import { DEFAULT_OPTIONS } from '../../src/anomalies/index.js';
import { compareAll, episodeTable, table } from './evaluate.js';
import { generate } from './generate.js';

const args = process.argv.slice(2);
const seeds: number[] = [];
let sensitivity = DEFAULT_OPTIONS.sensitivity;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seed') seeds.push(Number(args[++i]));
  else if (args[i] === '--sensitivity') sensitivity = Number(args[++i]);
}
if (!(sensitivity > 0)) {
  console.error('--sensitivity must be a positive number');
  process.exit(3);
}
const options = { ...DEFAULT_OPTIONS, sensitivity };
const verbose = args.includes('--verbose');
const episodes = args.includes('--episodes');
const targets = { recall: 0.9, precision: 0.8, falseAlarms: 1, medianDelay: 0, maxDelay: 2 };
let allMet = true;
for (const seed of seeds.length ? seeds : [15, 1, 2]) {
  const data = generate({ seed });
  const scores = compareAll(data, options);
  console.log(
    `\nseed ${seed}: ${data.series.length} sources, ${data.weeks} weeks (4 training + ` +
      `${data.weeks - 4} evaluated), ${data.incidents.length} incidents`,
  );
  console.log(table(scores));
  if (episodes) console.log(`by episode (consecutive alerted hours of one source × metric):\n${episodeTable(scores)}`);
  const [ours, plain] = scores;
  if (!ours || !plain) continue;
  const met =
    ours.recall >= targets.recall &&
    ours.precision >= targets.precision &&
    ours.falseAlarmsPerSourceWeek <= targets.falseAlarms &&
    ours.medianDelayHours === targets.medianDelay &&
    (ours.maxDelayHours ?? 0) <= targets.maxDelay &&
    ours.recall >= plain.recall &&
    ours.precision > plain.precision;
  allMet &&= met;
  console.log(
    `targets (recall ≥ 0.9, precision ≥ 0.8, ≤ 1 false alarm / source-week, delay 0 h median, ≤ 2 h max, ` +
      `better than plain): ${met ? 'met' : 'MISSED'}`,
  );
  if (verbose || !met) for (const m of ours.misses) console.log(`  ${m}`);
}
process.exitCode = allMet ? 0 : 1;
