import { z } from 'zod';
import type { Notifier } from '../alerting/types.js';
import { alertmanagerConfigSchema, createAlertmanagerNotifier } from './alertmanager.js';
import { createDiscordNotifier, discordConfigSchema } from './discord.js';
import { createPagerdutyNotifier, pagerdutyConfigSchema } from './pagerduty.js';
import { createSendgridNotifier, sendgridConfigSchema } from './sendgrid.js';
import { createSlackNotifier, slackConfigSchema } from './slack.js';
import { createTwilioNotifier, twilioConfigSchema } from './twilio.js';
import { createWebhookNotifier, webhookConfigSchema } from './webhook.js';

/** Every provider, listed explicitly: its config schema (validated by itself) and its factory. */
export const NOTIFIER_TYPES = {
  discord: { schema: discordConfigSchema, create: createDiscordNotifier },
  slack: { schema: slackConfigSchema, create: createSlackNotifier },
  sendgrid: { schema: sendgridConfigSchema, create: createSendgridNotifier },
  twilio: { schema: twilioConfigSchema, create: createTwilioNotifier },
  pagerduty: { schema: pagerdutyConfigSchema, create: createPagerdutyNotifier },
  webhook: { schema: webhookConfigSchema, create: createWebhookNotifier },
  alertmanager: { schema: alertmanagerConfigSchema, create: createAlertmanagerNotifier },
} as const;

export type NotifierType = keyof typeof NOTIFIER_TYPES;

export const notifierConfigSchema = z.discriminatedUnion('type', [
  discordConfigSchema,
  slackConfigSchema,
  sendgridConfigSchema,
  twilioConfigSchema,
  pagerdutyConfigSchema,
  webhookConfigSchema,
  alertmanagerConfigSchema,
]);

export type NotifierConfig = z.output<typeof notifierConfigSchema>;

/** Builds the configured notifiers. */
export function createNotifiers(configs: NotifierConfig[]): Notifier[] {
  return configs.map((config) => {
    // The union narrows by `type`; each factory takes its own config shape.
    const entry = NOTIFIER_TYPES[config.type] as { create: (c: typeof config) => Notifier };
    return entry.create(config);
  });
}
