import { describe, expect, it } from 'vitest';
import { cut, oneLine, tableLines } from '../../src/util/text.js';

describe('oneLine', () => {
  it('leaves ordinary text as written, emoji and accents included', () => {
    expect(oneLine('vendor_a')).toBe('vendor_a');
    expect(oneLine('Zürich 📦 C:\\data\\file.csv')).toBe('Zürich 📦 C:\\data\\file.csv');
    expect(oneLine(42)).toBe('42');
  });

  it('shows C0, DEL, C1 and bidi characters escaped, newline, CR and tab by name', () => {
    expect(oneLine('\x1b[2J\x1b[31mred')).toBe('\\x1b[2J\\x1b[31mred');
    expect(oneLine('a\r\nb\tc\0')).toBe('a\\r\\nb\\tc\\x00');
    expect(oneLine('del\x7f c1\x9b\x80')).toBe('del\\x7f c1\\x9b\\x80');
    expect(oneLine('rlo\u202egnp.exe \u2066iso\u2069 \u200e\u200f\u061c')).toBe(
      'rlo\\u202egnp.exe \\u2066iso\\u2069 \\u200e\\u200f\\u061c',
    );
    expect(oneLine('ls\u2028ps\u2029bom\ufeff')).toBe('ls\\u2028ps\\u2029bom\\ufeff');
    expect(oneLine('lone \ud800 and \udc00')).toBe('lone \\ud800 and \\udc00');
    expect(oneLine('\x1b\u202e\x9b\n')).toMatch(/^[\x20-\x7e]+$/);
  });

  it('cuts with … at the maximum, never inside an escape or a surrogate pair', () => {
    expect(oneLine('abcdef', 6)).toBe('abcdef');
    expect(oneLine('abcdefg', 6)).toBe('abcde…');
    expect(oneLine('abcd\x1b', 6)).toBe('abcd…');
    expect(oneLine('a📦📦📦', 4)).toBe('a📦…');
    const long = oneLine('\x1b'.repeat(1_000_000), 500);
    expect(long.length).toBeLessThanOrEqual(500);
    expect(long.endsWith('\\x1b…')).toBe(true);
  });

  it('escapes reserved characters on request', () => {
    expect(oneLine("a=b|c'd", 100, '=|')).toBe("a\\x3db\\x7cc'd");
  });
});

describe('cut', () => {
  it('cuts without escaping and keeps surrogate pairs whole', () => {
    expect(cut('abc', 3)).toBe('abc');
    expect(cut('abcd', 3)).toBe('ab…');
    expect(cut('a📦b', 3)).toBe('a…');
    expect(cut('\x1b'.repeat(10), 4)).toBe('\x1b\x1b\x1b…');
  });
});

describe('tableLines', () => {
  it('cuts cells before measuring the columns, so a huge cell does not widen the table', () => {
    const lines = tableLines(
      [
        ['ID', 'SOURCE', 'AGE'],
        ['1', 'x'.repeat(1_000_000), '5m'],
        ['2', 'a\x1bb', '7m'],
      ],
      { max: 10, indent: '  ' },
    );
    expect(lines).toEqual(['  ID  SOURCE      AGE', '  1   xxxxxxxxx…  5m', '  2   a\\x1bb      7m']);
  });
});
