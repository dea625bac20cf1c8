/**
 * A small version of `npm run eval` (bench/anomalies) as a regression test: fixed seed, 5 of the 8
 * sources, 4 training weeks + 1 evaluated week with 6 labelled incidents. The bounds leave margin
 * under what the detector measures today (recall 1.00, precision 0.95, 0.2 false alarms per
 * source-week, max delay 0 h; 21 alerted hours, 20 true); a change to the model that loses them is a
 * regression. One false alarm more or less moves precision by about 0.04 and false alarms by 0.2.
 */
import { describe, expect, it } from 'vitest';
import { compareAll } from '../../bench/anomalies/evaluate.js';
import { generate, SOURCES } from '../../bench/anomalies/generate.js';

describe('anomaly evaluation (regression)', () => {
  const data = generate({ seed: 7, weeks: 5, sources: SOURCES.slice(0, 5), incidentsPerWeek: 6 });
  const [ours, plain, statics] = compareAll(data);

  it('the generator is deterministic', () => {
    const again = generate({ seed: 7, weeks: 5, sources: SOURCES.slice(0, 5), incidentsPerWeek: 6 });
    expect(again.incidents).toEqual(data.incidents);
    expect([...again.series[0]!.hours.values()]).toEqual([...data.series[0]!.hours.values()]);
    expect(data.incidents).toHaveLength(6);
  });

  it("Sentinel's detector finds the incidents early with few false alarms", () => {
    expect(ours!.recall).toBeGreaterThanOrEqual(0.83);
    expect(ours!.precision).toBeGreaterThanOrEqual(0.8);
    expect(ours!.falseAlarmsPerSourceWeek).toBeLessThanOrEqual(1);
    expect(ours!.medianDelayHours).toBe(0);
    expect(ours!.maxDelayHours!).toBeLessThanOrEqual(2);
  });

  it('beats the plain median/MAD baseline and the static checks', () => {
    expect(plain!.falseAlarmsPerSourceWeek).toBeGreaterThan(20);
    expect(ours!.precision).toBeGreaterThan(10 * plain!.precision);
    expect(ours!.recall).toBeGreaterThan(statics!.recall);
  });
});
