import { describe, expect, it } from 'vitest';
import { displayUrl, Redactor, redactUrlPasswords } from '../../src/util/redact.js';

describe('redaction', () => {
  it('masks the password of any URL in free text', () => {
    expect(redactUrlPasswords('cannot reach postgres://app:hunter2hunter@db:5432/x now')).toBe(
      'cannot reach postgres://app:***@db:5432/x now',
    );
  });

  it('masks known secrets wherever they appear, percent-encoded or not', () => {
    const r = new Redactor(['p@ss/word!', 'service-role-key-123']);
    expect(r.redact('key=service-role-key-123 pw=p@ss/word! enc=p%40ss%2Fword!')).not.toMatch(
      /service-role-key-123|p@ss\/word!/,
    );
    expect(new Redactor([encodeURIComponent('p@ss/word!')]).redact('pw=p@ss/word!')).toBe('pw=***');
  });

  it('ignores very short values that would mangle ordinary text', () => {
    expect(new Redactor(['ab']).redact('about')).toBe('about');
  });

  it('prints URLs without password or query string', () => {
    expect(displayUrl('postgres://u:secretpw@h:5432/db?sslmode=require&password=x')).toBe('postgres://u:***@h:5432/db');
  });
});
