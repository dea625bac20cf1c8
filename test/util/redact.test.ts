import { describe, expect, it } from 'vitest';
import { displayUrl, Redactor, redactUrlPasswords, secretsOfUrl } from '../../src/util/redact.js';

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

  it("takes a URL's password as a secret, decoded and as written, also when it is not valid percent-encoding", () => {
    expect(secretsOfUrl('postgres://u:pa%24%24word@h/db')).toEqual(['pa%24%24word', 'pa$$word']);
    // Once lost to the decoder's URIError (nothing masked when it appeared alone in a message).
    expect(secretsOfUrl('postgres://u:pa%zzword@h/db')).toEqual(['pa%zzword', 'pa%zzword']);
    expect(new Redactor(secretsOfUrl('postgres://u:pa%zzword@h/db')).redact('login failed: pa%zzword')).toBe(
      'login failed: ***',
    );
  });
});
