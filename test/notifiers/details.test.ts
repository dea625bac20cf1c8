import { describe, expect, it } from 'vitest';
import { aboutAlert, readableDetails, readableLines, readableTime } from '../../src/notifiers/details.js';

/**
 * The one wording of an alert's details (notifications and the human report): the
 * shapes the checks record, units from key names, hostile values escaped and bounded.
 */
describe('readableLines: what each check records', () => {
  it.each([
    {
      name: 'error_spike, overall, with the sources behind it',
      details: {
        error_rate_pct: 29.01,
        threshold_pct: 15,
        hour_bucket: '2025-01-04T10:00:00Z',
        error_rows: 291,
        total_rows: 1003,
        min_rows: 100,
        top_sources: [
          { source: 'vendor_a', error_rate_pct: 41.24, error_rows: 120, total_rows: 291 },
          { source: 'vendor_b', error_rate_pct: 20.33, error_rows: 61, total_rows: 300 },
        ],
        sources_in_bucket: 4,
      },
      lines: [
        'error rate: 29.01 %',
        'threshold: 15 %',
        'hour bucket: 2025-01-04 10:00 UTC',
        'error rows: 291',
        'total rows: 1003',
        'min rows: 100',
        'top sources: vendor_a 41.24 % (120 of 291 rows); vendor_b 20.33 % (61 of 300 rows)',
        'sources in bucket: 4',
      ],
    },
    {
      name: 'stuck_batches',
      details: {
        stuck_batches: [
          { status: 'processing', batch_count: 2, oldest_age_minutes: 15.3 },
          { status: 'validating', batch_count: 1, oldest_age_minutes: 95 },
        ],
        total_stuck: 3,
        threshold_minutes: 10,
        oldest_batches: [
          { id: 'b-42', source: 'vendor_a', status: 'validating', age_minutes: 95 },
          { id: 'b-43', source: 'vendor_b', status: 'processing', age_minutes: 15.3 },
        ],
      },
      lines: [
        'stuck batches: 2 batches in processing, oldest 15 min; 1 batch in validating, oldest 1 h 35 min',
        'total stuck: 3',
        'threshold: 10 min',
        'oldest batches: b-42 (vendor_a, validating, 1 h 35 min); b-43 (vendor_b, processing, 15 min)',
      ],
    },
    {
      name: 'queue_backlog',
      details: {
        total_waiting: 4,
        threshold_minutes: 30,
        oldest_age_minutes: 3000,
        oldest_batches: [{ id: 'b-1', source: 'vendor_a', age_minutes: 3000 }],
      },
      lines: [
        'total waiting: 4',
        'threshold: 30 min',
        'oldest age: 2 d 2 h',
        'oldest batches: b-1 (vendor_a, 2 d 2 h)',
      ],
    },
    {
      name: 'row_error_codes',
      details: {
        source: 'vendor_a',
        codes: [{ error_code: 'E_CURRENCY', occurrences: 12 }],
        sample_message: 'unknown currency "XBT"',
      },
      lines: [
        'source: vendor_a',
        'codes: error code E_CURRENCY, occurrences 12',
        'sample message: unknown currency "XBT"',
      ],
    },
    {
      name: 'schema_cache',
      details: { error: 'PGRST002', action_taken: 'NOTIFY pgrst', recovered: true, latency_ms: 1520, reloads: 1 },
      lines: ['error: PGRST002', 'action taken: NOTIFY pgrst', 'recovered: yes', 'latency: 1.52 s', 'reloads: 1'],
    },
  ])('$name', ({ details, lines }) => {
    const out = readableLines(details);
    expect(out).toEqual(lines);
    // Prose, never JSON.
    for (const line of out) expect(line).not.toMatch(/[{}"]\s*[:,]|\[\{/);
  });
});

describe('readableLines: units, times and odd values', () => {
  it.each([
    [{ duration_ms: 120 }, 'duration: 120 ms'],
    [{ duration_ms: 1500 }, 'duration: 1.5 s'],
    [{ wait_seconds: 30 }, 'wait: 30 s'],
    [{ wait_seconds: 7200 }, 'wait: 2 h'],
    [{ age_minutes: 7.5 }, 'age: 7.5 min'],
    [{ rate_pct: 0.005 }, 'rate: 0.01 %'],
    [{ _pct: 3 }, 'pct: 3 %'],
    [{ at: '2025-01-04T10:15:32.123Z' }, 'at: 2025-01-04 10:15:32 UTC'],
    [{ at: '2025-01-04T12:15:00+02:00' }, 'at: 2025-01-04 10:15 UTC'],
    [{ at: '2025-13-45T99:99:00Z' }, 'at: 2025-13-45T99:99:00Z'],
    [{ flag: false }, 'flag: no'],
    [{ names: ['a', 'b'] }, 'names: a; b'],
    [{ nested: { a: 1, b_pct: 2 } }, 'nested: a 1, b 2 %'],
    [{ deep: { a: { b: { c: { d: 1 } } } } }, 'deep: a b …'],
    [{ '': 1 }, '(unnamed): 1'],
  ])('%j → %s', (details, line) => {
    expect(readableLines(details)).toEqual([line]);
  });

  it('leaves out empty values and keeps every detail (each layout decides how many fit)', () => {
    const details: Record<string, unknown> = { a: null, b: undefined, c: [], d: 0 };
    for (let k = 0; k < 60; k++) details[`k${k}`] = k;
    const lines = readableLines(details);
    expect(lines[0]).toBe('d: 0');
    expect(lines).toHaveLength(61);
  });

  it('counts the items of a long list it does not show', () => {
    const entries = readableDetails({ ids: Array.from({ length: 8 }, (_, i) => `b-${i}`) });
    expect(entries).toEqual([
      {
        label: 'ids',
        text: 'b-0; b-1; b-2; b-3; b-4; … and 3 more',
        items: ['b-0', 'b-1', 'b-2', 'b-3', 'b-4'],
        more: 3,
      },
    ]);
  });
});

describe('readableLines: hostile data', () => {
  it('escapes control and bidi characters in names, values and labels, and cuts long values', () => {
    const evil = 'x\u001b[2J\n\u202eFORGED';
    const lines = readableLines({
      [`key${evil}`]: `value ${evil}`,
      top_sources: [{ source: evil, error_rate_pct: 50, error_rows: 1, total_rows: 2 }],
      oldest_batches: [{ id: 'b-1', source: 'y'.repeat(1_000_000), status: 'processing', age_minutes: 12 }],
      message: 'm'.repeat(10_000),
    });
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(lines[0]).toBe('keyx\\x1b[2J\\n\\u202eFORGED: value x\\x1b[2J\\n\\u202eFORGED');
    expect(lines[1]).toBe('top sources: x\\x1b[2J\\n\\u202eFORGED 50 % (1 of 2 rows)');
    expect(lines[2]).toMatch(/^oldest batches: b-1 \(y{199}…, processing, 12 min\)$/);
    expect(lines[3]).toHaveLength('message: '.length + 500);
  });

  it('masks a secret before cutting, so a secret cut in half is still masked', () => {
    const secret = 's3cret-token-value';
    const value = `${'a'.repeat(490)}${secret}`;
    const [line] = readableLines({ error: value }, { redact: (t) => t.replaceAll(secret, '***') });
    expect(line).toBe(`error: ${'a'.repeat(490)}***`);
  });
});

describe('readableTime', () => {
  it.each([
    ['2025-01-04T10:00:00Z', '2025-01-04 10:00 UTC'],
    ['2025-01-04T10:00:05.5Z', '2025-01-04 10:00:05 UTC'],
    ['2025-01-04T00:30:00-01:00', '2025-01-04 01:30 UTC'],
    ['2025-01-04', undefined],
    ['vendor_a', undefined],
  ])('%s → %s', (iso, text) => {
    expect(readableTime(iso)).toBe(text);
  });
});

describe('aboutAlert: what an SMS or a PagerDuty summary adds to the message', () => {
  const top = (source: string, error_rate_pct: number) => ({ source, error_rate_pct, error_rows: 1, total_rows: 1 });
  const batch = { id: '0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b', source: 'vendor_a', status: 'validating' };
  it.each([
    { name: 'no shape it knows', details: { error_rate_pct: 20 }, expected: '' },
    { name: 'no sources', details: { top_sources: [] }, expected: '' },
    { name: 'one source', details: { top_sources: [top('a', 41.25)] }, expected: ' (top source: a 41.3%)' },
    {
      name: 'two sources',
      details: { top_sources: [top('a', 41.2), top('b', 20.3)] },
      expected: ' (top sources: a 41.2%, b 20.3%)',
    },
    {
      name: 'more than three sources',
      details: { top_sources: [top('a', 3), top('b', 2), top('c', 1), top('d', 1)] },
      expected: ' (top sources: a 3.0%, b 2.0%, c 1.0%, …)',
    },
    {
      name: 'the oldest stuck batch',
      details: {
        oldest_batches: [
          { ...batch, age_minutes: 14 },
          { ...batch, age_minutes: 12 },
        ],
      },
      expected: `; oldest ${batch.id} from vendor_a, 14 min`,
    },
    {
      name: 'the oldest waiting batch',
      details: { oldest_batches: [{ id: 'b-1', source: 'vendor_b', age_minutes: 95 }] },
      expected: '; oldest b-1 from vendor_b, 1 h 35 min',
    },
    { name: 'a batch without an age', details: { oldest_batches: [{ id: 'b-1' }] }, expected: '' },
  ])('$name', ({ details, expected }) => {
    expect(aboutAlert(details)).toBe(expected);
  });

  it('escapes, cuts and masks names from the data', () => {
    const evil = `v\u001b[31m\n\u202e${'x'.repeat(300)}`;
    const about = aboutAlert({ oldest_batches: [{ id: 'b-1', source: evil, age_minutes: 40 }] });
    expect(about).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(about).toContain('v\\x1b[31m\\n\\u202e');
    expect(about.length).toBeLessThan(200);
    expect(
      aboutAlert({ top_sources: [top('hunter2-secret', 50)] }, { redact: (t) => t.replace('hunter2', '***') }),
    ).toBe(' (top source: ***-secret 50.0%)');
  });
});
