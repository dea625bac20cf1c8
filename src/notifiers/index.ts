import { z } from 'zod';
import { alertmanagerConfigSchema, createAlertmanagerNotifier } from './alertmanager.js';
import type { BaseNotifierConfig } from './base.js';
import type { Notifier } from './contract.js';
import { createDiscordNotifier, discordConfigSchema } from './discord.js';
import { createPagerdutyNotifier, pagerdutyConfigSchema } from './pagerduty.js';
import { createSendgridNotifier, sendgridConfigSchema } from './sendgrid.js';
import { createSlackNotifier, slackConfigSchema } from './slack.js';
import { createTwilioNotifier, twilioConfigSchema } from './twilio.js';
import { createWebhookNotifier, webhookConfigSchema } from './webhook.js';

/**
 * One provider as the registry lists it: the schema of its `notifiers[]` section
 * (a strict object with the base fields and `type`) and the factory that turns a
 * validated section into a Notifier.
 */
export interface NotifierDefinition {
  schema: z.ZodType<BaseNotifierConfig>;
  create(config: never): Notifier;
}

/**
 * Every provider, once: the key is the `type` users write in the config. The
 * config's discriminated union and the factory are both derived from this list,
 * so adding a provider is its file plus one line here.
 */
export const NOTIFIER_TYPES = {
  discord: { schema: discordConfigSchema, create: createDiscordNotifier },
  slack: { schema: slackConfigSchema, create: createSlackNotifier },
  sendgrid: { schema: sendgridConfigSchema, create: createSendgridNotifier },
  twilio: { schema: twilioConfigSchema, create: createTwilioNotifier },
  pagerduty: { schema: pagerdutyConfigSchema, create: createPagerdutyNotifier },
  webhook: { schema: webhookConfigSchema, create: createWebhookNotifier },
  alertmanager: { schema: alertmanagerConfigSchema, create: createAlertmanagerNotifier },
} satisfies Record<string, NotifierDefinition>;

type Registry = typeof NOTIFIER_TYPES;

/** A provider's `type`, as written in the config. */
export type NotifierType = keyof Registry;

/** The validated config section of provider `T`. */
export type NotifierConfigOf<T extends NotifierType> = z.output<Registry[T]['schema']>;

/**
 * The registry seen per key. Assigning the list to this type is the compile-time
 * check that each key is the `type` literal its schema accepts and that each
 * factory takes what its own schema outputs; it also lets `createNotifier` call
 * the factory of a generic `T` without a cast.
 */
const FACTORIES: {
  [T in NotifierType]: { schema: z.ZodType<{ type: T }>; create: (config: NotifierConfigOf<T>) => Notifier };
} = NOTIFIER_TYPES;

/** `list` as a non-empty tuple, which z.discriminatedUnion requires. */
function nonEmpty<T>(list: readonly T[]): [T, ...T[]] {
  const [first, ...rest] = list;
  if (first === undefined) throw new Error('NOTIFIER_TYPES lists no provider');
  return [first, ...rest];
}

/** A `notifiers[]` section: one provider's schema, chosen by `type`. */
export const notifierConfigSchema = z.discriminatedUnion(
  'type',
  nonEmpty(Object.values(NOTIFIER_TYPES).map((entry) => entry.schema)),
);

/** A validated `notifiers[]` section, of any provider. */
export type NotifierConfig = z.output<typeof notifierConfigSchema>;

/** The notifier of one validated section, built by its provider's factory. */
export function createNotifier<T extends NotifierType>(config: NotifierConfigOf<T> & { type: T }): Notifier {
  const create: (config: NotifierConfigOf<T>) => Notifier = FACTORIES[config.type].create;
  return create(config);
}

/** Builds the configured notifiers. */
export function createNotifiers(configs: NotifierConfig[]): Notifier[] {
  return configs.map((config) => createNotifier(config));
}
