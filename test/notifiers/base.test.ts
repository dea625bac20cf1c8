import { describe, expect, it } from 'vitest';
import { hasCredentials, urlSecrets } from '../../src/notifiers/base.js';
import { cutClean, waterLevel } from '../../src/notifiers/format.js';
import { problems } from './contract.js';

/** A valid section of each provider with a required URL, and that URL's setting. */
const REQUIRED_URLS: Array<[type: string, field: string, section: Record<string, unknown>]> = [
  [
    'discord',
    'webhook_url',
    { name: 'oncall', type: 'discord', webhook_url: 'https://discord.com/api/webhooks/1/abc' },
  ],
  ['slack', 'webhook_url', { name: 'team', type: 'slack', webhook_url: 'https://hooks.slack.com/services/T/B/x' }],
  ['webhook', 'url', { name: 'hook', type: 'webhook', url: 'https://example.com/hook' }],
  ['alertmanager', 'url', { name: 'am', type: 'alertmanager', url: 'http://alertmanager:9093' }],
];

describe('URL settings, as `sentinel` reports them (configSchema + formatIssues)', () => {
  it.each(REQUIRED_URLS)(
    '%s %s: a missing URL is required, a bad one is not an http(s) URL',
    (_type, field, section) => {
      expect(problems(section)).toEqual([]);
      const { [field]: _url, ...missing } = section;
      expect(problems(missing)).toEqual([`notifiers.0.${field}: required`]);
      expect(problems({ ...section, [field]: 'ftp://example.com/hook' })).toEqual([
        `notifiers.0.${field}: expected an http:// or https:// URL`,
      ]);
      expect(problems({ ...section, [field]: 'not a url' })).toEqual([
        `notifiers.0.${field}: expected an http:// or https:// URL`,
      ]);
      expect(problems({ ...section, [field]: 42 })).toEqual([
        `notifiers.0.${field}: expected an http:// or https:// URL`,
      ]);
    },
  );

  it('leaves optional URLs optional and defaulted ones defaulted', () => {
    const pagerduty = { name: 'pager', type: 'pagerduty', routing_key: 'e93facc04764012d7bfb002500d5d1a6' };
    expect(problems(pagerduty)).toEqual([]);
    expect(problems({ ...pagerduty, client_url: 'javascript:alert(1)' })).toEqual([
      'notifiers.0.client_url: expected an http:// or https:// URL',
    ]);
    expect(
      problems({
        name: 'oncall',
        type: 'discord',
        webhook_url: 'https://discord.com/api/webhooks/1/abc',
        avatar_url: 'ftp://x/a.png',
      }),
    ).toEqual(['notifiers.0.avatar_url: expected an http:// or https:// URL']);
    expect(
      problems({ name: 'mail', type: 'sendgrid', api_key: 'SG.x', from: 'a@example.com', to: ['b@example.com'] }),
    ).toEqual([]);
  });
});

describe('shared helpers', () => {
  it('urlSecrets: the URL, its path, its query and every token-long segment', () => {
    expect(urlSecrets('https://hooks.slack.com/services/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?x=1')).toEqual([
      'https://hooks.slack.com/services/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?x=1',
      '/services/T0123ABCD/B0456EFGH/xQ7bR2kLmN9pT4vW8yZ1aC3e',
      'x=1',
      'xQ7bR2kLmN9pT4vW8yZ1aC3e',
    ]);
    expect(urlSecrets('https://example.com/')).toEqual(['https://example.com/']);
  });

  it('hasCredentials: a user or password in the URL', () => {
    expect(hasCredentials('https://user:pw@example.com/')).toBe(true);
    expect(hasCredentials('https://user@example.com/')).toBe(true);
    expect(hasCredentials('https://example.com/')).toBe(false);
    expect(hasCredentials('not a url')).toBe(false);
  });

  it('cutClean: an ellipsis, never half a surrogate pair or half an escape', () => {
    expect(cutClean('abcdef', 6)).toBe('abcdef');
    expect(cutClean('abcdef', 4)).toBe('abc…');
    expect(cutClean('abcdef', 1)).toBe('a');
    expect(cutClean('abcdef', -1)).toBe('');
    expect(cutClean('ab🚨cd', 4)).toBe('ab…');
    expect(cutClean('a &amp; b', 5, (head) => head.replace(/&[a-z]*$/, ''))).toBe('a …');
  });

  it('waterLevel: the largest fair cap, Infinity when everything fits', () => {
    expect(waterLevel([10, 20, 30], 60)).toBe(Infinity);
    expect(waterLevel([10, 20, 30], 50)).toBe(20);
    expect(waterLevel([10, 100, 100], 70)).toBe(30);
    expect(waterLevel([10, 20], -5)).toBe(0);
  });
});
