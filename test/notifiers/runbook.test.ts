import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { DATABASE_CHECK } from '../../src/checks/runner.js';
import { alertmanagerAlerts } from '../../src/notifiers/alertmanager.js';
import { discordBody } from '../../src/notifiers/discord.js';
import { eventRunbook, runbookLink } from '../../src/notifiers/format.js';
import { pagerdutyConfigSchema, pagerdutyEvents } from '../../src/notifiers/pagerduty.js';
import { sendgridBody } from '../../src/notifiers/sendgrid.js';
import { slackBody } from '../../src/notifiers/slack.js';
import { event, notification } from '../helpers/notifications.js';
import { problems } from './contract.js';

/** Every alert links to its section of docs/runbooks.md (stable anchors), under a notifier's runbook_url. */
describe('runbookLink', () => {
  it.each([
    [{ check: 'stuck_batches', message: '1 batch stuck' }, undefined, 'docs/runbooks.md#stuck-batches'],
    [{ check: 'error_spike', message: 'Error rate' }, undefined, 'docs/runbooks.md#error-spike'],
    [{ check: 'error_spike', message: 'Check failed: timeout' }, undefined, 'docs/runbooks.md#check-failing'],
    [{ check: DATABASE_CHECK, message: 'Database unreachable: …' }, undefined, 'docs/runbooks.md#database-unreachable'],
    [
      { check: 'queue_backlog', message: '4 batches waiting' },
      'https://git.example.com/ops/sentinel/blob/main/docs/runbooks.md',
      'https://git.example.com/ops/sentinel/blob/main/docs/runbooks.md#queue-backlog',
    ],
    [
      { check: 'row_error_codes', message: 'New' },
      'https://x.example/r.md#old',
      'https://x.example/r.md#row-error-codes',
    ],
  ])('%j under %s → %s', (e, base, link) => {
    expect(runbookLink(e, base)).toBe(link);
  });

  it('gives a test notification none', () => {
    expect(eventRunbook(event({ kind: 'test' }))).toBeUndefined();
  });

  it('takes runbook_url as an http(s) URL only', () => {
    const section = { name: 'pager', type: 'pagerduty', routing_key: 'e93facc04764012d7bfb002500d5d1a6' };
    expect(problems({ ...section, runbook_url: 'https://wiki.example.com/runbooks.md' })).toEqual([]);
    expect(problems({ ...section, runbook_url: 'javascript:alert(1)' })).toEqual([
      'notifiers.0.runbook_url: expected an http:// or https:// URL',
    ]);
    expect(problems({ name: 'sms', type: 'twilio', runbook_url: 'https://x.example/' })).toContain(
      'notifiers.0.runbook_url: unknown setting',
    );
  });
});

describe('each provider shows the runbook of each alert', () => {
  const base = 'https://wiki.example.com/sentinel/runbooks.md';
  const link = `${base}#stuck-batches`;
  const n = notification([event()]);

  it('Alertmanager: the runbook_url annotation', () => {
    expect(alertmanagerAlerts(n, 60_000, new Date(), base)[0]!.annotations.runbook_url).toBe(link);
  });

  it('Slack: a link in the context line', () => {
    const context = slackBody(n, base).blocks.find((b) => b.type === 'context');
    expect(context).toMatchObject({
      elements: [{ text: expect.stringMatching(/ · <https:\/\/wiki[^|>]+\|runbook>$/) }],
    });
  });

  it('Discord: the title links to it, only when runbook_url is set (Discord wants an absolute URL)', () => {
    expect(discordBody(n, { username: 'Sentinel', runbook_url: base }).embeds[0]!.url).toBe(link);
    expect(discordBody(n, { username: 'Sentinel' }).embeds[0]!.url).toBeUndefined();
  });

  it('SendGrid: a line in the text, a link in the HTML', () => {
    const mail = sendgridBody(n, { from: { email: 'a@example.com' }, to: ['b@example.com'], runbook_url: base });
    expect(mail.content[0].value).toContain(`  Runbook: ${link}\n`);
    expect(mail.content[1].value).toContain(`<a href="${link}">${link}</a>`);
    const plain = sendgridBody(n, { from: { email: 'a@example.com' }, to: ['b@example.com'] });
    expect(plain.content[0].value).toContain('  Runbook: docs/runbooks.md#stuck-batches\n');
    expect(plain.content[1].value).not.toContain('<a href');
  });

  it('PagerDuty: a link on the alert and the runbook in custom_details', () => {
    const config = pagerdutyConfigSchema.parse({
      name: 'pager',
      type: 'pagerduty',
      routing_key: 'e93facc04764012d7bfb002500d5d1a6',
      runbook_url: base,
    });
    const [trigger] = pagerdutyEvents(n, config);
    expect(trigger!.links).toEqual([{ href: link, text: 'Runbook' }]);
    expect(trigger!.payload!.custom_details).toMatchObject({ runbook: link });
  });
});

describe('docs/runbooks.md has every section a notification links to', () => {
  // GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
  const sections = new Set(
    readFileSync(new URL('../../docs/runbooks.md', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('## '))
      .map((line) =>
        line
          .slice(3)
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 _-]/g, '')
          .replace(/ /g, '-'),
      ),
  );
  const alerts = [
    ...CHECK_NAMES.map((check) => ({ check, message: 'x' })),
    { check: 'error_spike', message: 'Check failed: timeout' },
    { check: DATABASE_CHECK, message: 'Database unreachable: refused' },
  ];
  it.each(alerts)('$check ($message)', (e) => {
    const anchor = runbookLink(e).split('#')[1]!;
    expect(sections, `docs/runbooks.md has no "## " section for #${anchor}`).toContain(anchor);
  });
});
