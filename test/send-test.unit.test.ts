/** The arguments of `push-proxy send-test`, as parsed before any configuration is read. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandError } from '../src/commands/errors';
import { parseSendTestArgs } from '../src/commands/send-test';

describe('parseSendTestArgs', () => {
  it('reads every option, separate or with "=", and defaults the message', () => {
    assert.deepEqual(parseSendTestArgs(['--platform', 'apple_rn-v2', '--token=abc', '--dry-run', '--config', 'c.json']), {
      platform: 'apple_rn-v2',
      token: 'abc',
      message: 'Push Proxy test notification',
      dryRun: true,
      configArgs: ['--config', 'c.json'],
    });
    assert.deepEqual(parseSendTestArgs(['--token', 't', '--platform=android', '--message', '--dry-run is text here', '-config', 'x']), {
      platform: 'android',
      token: 't',
      message: '--dry-run is text here',
      dryRun: false,
      configArgs: ['--config', 'x'],
    });
  });

  it('--help wins over anything else', () => {
    assert.equal(parseSendTestArgs(['--platform', 'x', '--help']), 'help');
  });

  const refused: Array<[string[], RegExp]> = [
    [['--token', 't'], /^--platform TYPE is required\nUsage:/],
    [['--platform', 'apple_rn'], /^--token TOKEN is required\nUsage:/],
    [['--platform', 'apple_rn', '--token'], /^--token needs a value\nUsage:/],
    [['--platform', 'apple_rn', '--token', 't', '--verbose'], /^unknown argument "--verbose"\nUsage:/],
    [['--platform', 'apple_rn', '--token', 't', '--dry-run=yes'], /^unknown argument "--dry-run=yes"\nUsage:/],
    [['--platform', '', '--token', 't'], /^--platform TYPE is required/],
  ];
  for (const [argv, message] of refused) {
    it(`refuses ${JSON.stringify(argv)} with the usage`, () => {
      assert.throws(
        () => parseSendTestArgs(argv),
        (err: unknown) => err instanceof CommandError && message.test(err.message),
      );
    });
  }
});
