/**
 * `push-proxy send-test` as an operator runs it: a child process with a config file naming the sandbox APNs and
 * FCM peers (AppleEndpoint / FcmEndpoint) and their CA in NODE_EXTRA_CA_CERTS; what it prints and what reached the peers.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { runCli } from './cli-process';
import { APPLE_TOKEN, TOPIC, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

const FCM_TOKEN = `c2VuZC10ZXN0:APA91bF${'q'.repeat(60)}`;
const PROJECT = 'send-test-project';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe('push-proxy send-test', () => {
  let apns: ApnsFixture;
  let fcm: FcmPeer;
  let configFile: string;
  let env: Record<string, string>;

  before(async () => {
    apns = await startApnsFixture();
    // One CA for both peers: one NODE_EXTRA_CA_CERTS file, as an operator's private relays would share.
    fcm = new FcmPeer({ tls: apns.serverTls });
    await fcm.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(fcm.tokenUri, PROJECT);
    fcm.addServiceAccount(account.client_email, publicKeyPem, PROJECT);
    const dir = tempDir();
    const serviceFile = writeTemp(dir, 'service-account.json', JSON.stringify(account));
    configFile = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({
        SendTimeoutSec: 10,
        RetryTimeoutSec: 5,
        ApplePushSettings: [apns.entry()],
        AndroidPushSettings: [{ Type: 'android_rn', ServiceFileLocation: serviceFile, FcmEndpoint: fcm.url }],
      }),
    );
    env = { NODE_EXTRA_CA_CERTS: writeTemp(dir, 'ca.pem', apns.ca.certPem) };
  });
  after(async () => {
    await apns.close();
    await fcm.close();
  });
  beforeEach(() => {
    apns.peer.reset();
    fcm.reset();
  });

  async function sendTest(args: string[], extraEnv: Record<string, string> = env): Promise<Run> {
    const cli = runCli(['send-test', ...args], extraEnv);
    const code = await cli.exited;
    return { code, out: cli.output(), err: cli.stderr() };
  }

  function assertNoFullToken(run: Run, token: string): void {
    assert.ok(!run.out.includes(token) && !run.err.includes(token), `the full device token was printed:\n${run.out}\n${run.err}`);
  }

  it('APNs: OK for a good token, with the apns-id, the attempts and the time it took', async () => {
    const run = await sendTest([
      '--platform',
      'apple_rn',
      '--token',
      APPLE_TOKEN,
      '--message',
      'hello from send-test',
      '--config',
      configFile,
    ]);
    assert.equal(run.code, 0, run.err);
    const received = apns.peer.receivedFor(APPLE_TOKEN);
    assert.equal(received.length, 1);
    assert.equal(received[0]!.status, 200);
    assert.match(JSON.stringify(received[0]!.payload), /hello from send-test/);
    assert.match(run.out, /^outcome: {2}OK$/m);
    assert.match(run.out, /^attempts: 1$/m);
    assert.match(run.out, /^took: {5}\d+ ms$/m);
    assert.match(run.out, new RegExp(`^apns-id: ${received[0]!.apnsId}$`, 'm'));
    assert.match(run.out, /device a1a1a1a1…/);
    assertNoFullToken(run, APPLE_TOKEN);
  });

  it('APNs: REMOVE for an unregistered token, with the reason, exit code 2', async () => {
    apns.peer.unregister(APPLE_TOKEN);
    const run = await sendTest(['--platform', 'apple_rn', '--token', APPLE_TOKEN, '--config', configFile]);
    assert.equal(run.code, 2, run.err);
    assert.match(run.out, /^outcome: {2}REMOVE$/m);
    assert.match(run.out, /^reason: {3}Unregistered$/m);
    assert.match(run.out, /^apns-id: [0-9a-f-]{36}$/im);
    assertNoFullToken(run, APPLE_TOKEN);
  });

  it('APNs: credentials the provider refuses are a FAIL with what to check, exit code 2', async () => {
    apns.peer.revokeTokenKey(apns.authKey.keyId);
    try {
      const run = await sendTest(['--platform', 'apple_rn', '--token', APPLE_TOKEN, '--config', configFile]);
      assert.equal(run.code, 2, run.err);
      assert.match(run.out, /^outcome: {2}FAIL$/m);
      assert.match(run.out, /^provider: InvalidProviderToken$/m);
      assert.match(run.out, /^advice: {3}APNs refused the token key/m);
    } finally {
      apns.peer.addTokenKey({
        keyId: apns.authKey.keyId,
        teamId: apns.authKey.teamId,
        publicKeyPem: apns.authKey.publicKeyPem,
        topics: [TOPIC],
      });
    }
  });

  it('APNs --dry-run: checks the credentials and prints the request, sends nothing', async () => {
    const run = await sendTest(['--platform', 'apple_rn-v2', '--token', APPLE_TOKEN, '--dry-run', '--config', configFile]);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /dry run: nothing was sent/);
    assert.match(run.out, /^credentials: loaded and checked as at start-up$/m);
    assert.match(run.out, /^would send: \{"token":"a1a1a1a1…"/m);
    assert.match(run.out, /"apns-topic":"com\.mattermost\.react\.native"/);
    assert.match(run.out, /Push Proxy test notification/);
    assertNoFullToken(run, APPLE_TOKEN);
    assert.equal(apns.peer.received.length, 0);
  });

  it('APNs --dry-run still refuses a key that cannot be read, exit code 2', async () => {
    const broken = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ ApplePushSettings: [apns.entry({ AppleAuthKeyFile: writeTemp(tempDir(), 'AuthKey.p8', 'not a key') })] }),
    );
    const run = await sendTest(['--platform', 'apple_rn', '--token', APPLE_TOKEN, '--dry-run', '--config', broken]);
    assert.equal(run.code, 2);
    assert.match(run.err, /AppleAuthKeyFile .* is not a readable private key/);
  });

  it("FCM: OK for a good token, with FCM's message name", async () => {
    const run = await sendTest(['--platform', 'android_rn', '--token', FCM_TOKEN, '--config', configFile]);
    assert.equal(run.code, 0, run.err);
    const received = fcm.receivedFor(FCM_TOKEN);
    assert.equal(received.length, 1);
    assert.equal(received[0]!.validateOnly, false);
    const name = (received[0]!.answer as { name: string }).name;
    assert.match(run.out, /^outcome: {2}OK$/m);
    assert.match(run.out, /^attempts: 1$/m);
    assert.equal(
      run.out.split('\n').find((line) => line.startsWith('FCM message name: ')),
      `FCM message name: ${name}`,
    );
    assertNoFullToken(run, FCM_TOKEN);
  });

  it('FCM: REMOVE for an unregistered token, exit code 2', async () => {
    fcm.unregister(FCM_TOKEN);
    const run = await sendTest(['--platform', 'android_rn', '--token', FCM_TOKEN, '--config', configFile]);
    assert.equal(run.code, 2, run.err);
    assert.match(run.out, /^outcome: {2}REMOVE$/m);
    assert.match(run.out, /^reason: {3}UNREGISTERED$/m);
    assertNoFullToken(run, FCM_TOKEN);
  });

  it('FCM --dry-run: validate_only, nothing delivered at the peer', async () => {
    const run = await sendTest(['--platform', 'android_rn', '--token', FCM_TOKEN, '--dry-run', '--config', configFile]);
    assert.equal(run.code, 0, run.err);
    const received = fcm.receivedFor(FCM_TOKEN);
    assert.equal(received.length, 1);
    assert.equal(received[0]!.validateOnly, true);
    assert.equal(received[0]!.delivered, false);
    assert.match(run.out, /dry run: the provider was asked only to validate it, nothing was delivered/);
    assert.match(run.out, new RegExp(`^FCM message name: projects/${PROJECT}/messages/fake_message_id$`, 'm'));
    assertNoFullToken(run, FCM_TOKEN);
  });

  it('an unknown platform type: exit code 2, naming the configured ones; nothing sent', async () => {
    const run = await sendTest(['--platform', 'windows_phone', '--token', APPLE_TOKEN, '--config', configFile]);
    assert.equal(run.code, 2);
    assert.match(run.err, /no entry has Type "windows_phone" in .*push-proxy\.json: the configured types are apple_rn, android_rn\./);
    assert.equal(apns.peer.received.length + fcm.received.length, 0);
  });

  it('an entry without credentials: exit code 2 with the reason it was skipped', async () => {
    const bare = writeTemp(tempDir(), 'push-proxy.json', JSON.stringify({ ApplePushSettings: [{ Type: 'apple', ApplePushTopic: TOPIC }] }));
    const run = await sendTest(['--platform', 'apple', '--token', APPLE_TOKEN, '--config', bare]);
    assert.equal(run.code, 2);
    assert.match(run.err, /ApplePushSettings entry "apple" cannot send: no credentials: set AppleAuthKeyFile/);
  });

  it('no configuration file: refuses (exit code 2) rather than start the built-in sandbox', async () => {
    const run = await sendTest(['--platform', 'apple_rn', '--token', APPLE_TOKEN], {});
    assert.equal(run.code, 2);
    assert.match(run.err, /no configuration file found, and send-test sends through the credentials of a configured entry/);
    assert.doesNotMatch(run.out + run.err, /sandbox APNs received/);
  });

  it('missing arguments: exit code 2 with the usage; --help: exit code 0', async () => {
    const missing = await sendTest(['--platform', 'apple_rn', '--config', configFile]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--token TOKEN is required\nUsage: push-proxy send-test/);
    const help = await sendTest(['--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: push-proxy send-test --platform TYPE --token TOKEN/);
  });
});
