/**
 * The environment variables Sentinel reads besides the configuration's own
 * (`SUPABASE_MODE`, `DATABASE_URL`, `${VAR}` in the file: src/config/load.ts).
 * Only src/config/ reads `process.env`; everything else is handed what it needs
 * from {@link readEnvironment}, so a test can pass any environment it likes.
 */

/** The process settings read from the environment, validated and typed. */
export interface Environment {
  /** `SENTINEL_DASHBOARD_TOKEN`, untrimmed; an empty value counts as unset. */
  readonly dashboardToken: string | undefined;
  /** `PGOPTIONS`, trimmed; kept on the leader lock connection after Sentinel's own options. */
  readonly pgOptions: string | undefined;
  /** `NO_COLOR` set to anything but the empty string (https://no-color.org). */
  readonly noColor: boolean;
  /** `SENTINEL_DEBUG=1`: stack traces after the one-line errors. */
  readonly debug: boolean;
  /** `SUDO_USER`: the person behind sudo, for audit records and silences. */
  readonly sudoUser: string | undefined;
  /** `USER`: the fallback when the OS cannot say who runs Sentinel. */
  readonly user: string | undefined;
}

/** Reads the environment once; `env` is injected by tests. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  return {
    dashboardToken: env.SENTINEL_DASHBOARD_TOKEN || undefined,
    pgOptions: env.PGOPTIONS?.trim() || undefined,
    noColor: Boolean(env.NO_COLOR),
    debug: env.SENTINEL_DEBUG === '1',
    sudoUser: env.SUDO_USER,
    user: env.USER,
  };
}
