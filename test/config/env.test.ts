import { describe, expect, it } from 'vitest';
import { readEnvironment } from '../../src/config/env.js';

describe('readEnvironment', () => {
  it('reads nothing as unset', () => {
    expect(readEnvironment({})).toEqual({
      dashboardToken: undefined,
      pgOptions: undefined,
      noColor: false,
      debug: false,
      sudoUser: undefined,
      user: undefined,
    });
  });

  it('takes empty values as unset and trims PGOPTIONS', () => {
    const env = readEnvironment({ SENTINEL_DASHBOARD_TOKEN: '', PGOPTIONS: '  ', NO_COLOR: '', SENTINEL_DEBUG: '0' });
    expect(env).toMatchObject({ dashboardToken: undefined, pgOptions: undefined, noColor: false, debug: false });
  });

  it('reads each variable', () => {
    const env = readEnvironment({
      SENTINEL_DASHBOARD_TOKEN: ' token-with-spaces ',
      PGOPTIONS: ' -c search_path=ops ',
      NO_COLOR: '1',
      SENTINEL_DEBUG: '1',
      SUDO_USER: 'alice',
      USER: 'root',
    });
    // The token is trimmed where its length is checked (sentinel serve), as before.
    expect(env).toEqual({
      dashboardToken: ' token-with-spaces ',
      pgOptions: '-c search_path=ops',
      noColor: true,
      debug: true,
      sudoUser: 'alice',
      user: 'root',
    });
  });
});
