import { describe, expect, it } from 'vitest';
import { errorLine } from '../../src/util/errors.js';

describe('errorLine', () => {
  it('keeps the first line of the message, the name when it is empty, String() of anything else', () => {
    expect(errorLine(new Error('first\nsecond'))).toBe('first');
    expect(errorLine(new TypeError(''))).toBe('TypeError');
    expect(errorLine(42)).toBe('42');
    expect(errorLine('a message')).toBe('a message');
  });

  it('masks URL passwords and the given secrets', () => {
    const line = errorLine(new Error('cannot reach postgres://app:hunter2@db/x with key s3cret'), {
      redact: (t) => t.replaceAll('s3cret', '***'),
    });
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('s3cret');
  });

  it('escapes control characters and cuts, unless told not to escape', () => {
    expect(errorLine(new Error('a\u001b[2Jb'))).toBe('a\\x1b[2Jb');
    expect(errorLine('x'.repeat(50), { max: 10 })).toBe(`${'x'.repeat(9)}…`);
    expect(errorLine('a\u001bb', { escape: false })).toBe('a\u001bb');
    expect(errorLine('one\ntwo', { firstLine: false })).toBe('one\\ntwo');
  });
});
