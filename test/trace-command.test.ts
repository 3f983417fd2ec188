/**
 * `push-proxy trace` as an operator runs it: a real proxy process (its config naming the sandbox APNs peer and an
 * admin listener), a notification whose first attempt is retried, its ack, then the command in another process
 * with the same configuration; and the command's exit code 2 for an unknown ack id, no proxy, or bad arguments.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from './connect-proxy';
import { runCli, stop, type Cli } from './cli-process';
import { APPLE_TOKEN, post, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe('push-proxy trace against a running proxy', () => {
  let apns: ApnsFixture;
  let proxy: Cli;
  let configFile: string;
  let env: Record<string, string>;
  let publicUrl: string;

  before(async () => {
    apns = await startApnsFixture();
    const dir = tempDir();
    const [port, adminPort] = [await freePort(), await freePort()];
    configFile = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({
        ListenAddress: `127.0.0.1:${port}`,
        AdminListenAddress: `127.0.0.1:${adminPort}`,
        SendTimeoutSec: 20,
        RetryTimeoutSec: 5,
        ApplePushSettings: [apns.entry()],
      }),
    );
    // runCli's own default listen address (port 0) would hide the file's: the command must find the same ports.
    env = { NODE_EXTRA_CA_CERTS: writeTemp(dir, 'ca.pem', apns.ca.certPem), PUSH_PROXY_LISTEN_ADDRESS: `127.0.0.1:${port}` };
    proxy = runCli(['--config', configFile], env);
    await proxy.waitFor(/Push Proxy listening/);
    publicUrl = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    if (proxy) await stop(proxy);
    await apns?.close();
  });

  async function traceCommand(args: string[], extraEnv = env): Promise<Run> {
    const cli = runCli(['trace', ...args], extraEnv);
    const code = await cli.exited;
    return { code, out: cli.output(), err: cli.stderr() };
  }

  it('prints both attempts with the apns-id, the answer, then the receipt once the device acknowledged', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, [{ status: 200, body: 'not json' }, { status: 200 }]);
    const sent = await post(`${publicUrl}/api/v1/send_push`, {
      platform: 'apple_rn-v2',
      server_id: 'srv-cli',
      device_id: APPLE_TOKEN,
      type: 'message',
      message: 'hello',
      ack_id: 'ack-cli',
      post_id: 'post-cli',
    });
    assert.equal(sent.text, '{"status":"OK"}\n');
    const apnsId = apns.peer.receivedFor(APPLE_TOKEN)[1]!.apnsId;

    const before = await traceCommand(['ack-cli', '--config', configFile]);
    assert.equal(before.code, 0, before.err);
    assert.match(before.out, /^notification ack_id ack-cli, post_id post-cli\n/);
    assert.match(before.out, /\nreceived: +\S+ from server srv-cli: apple_rn-v2, type message, device a1a1a1a1…\n/);
    const unreadId = apns.peer.receivedFor(APPLE_TOKEN)[0]!.apnsId;
    assert.match(before.out, new RegExp(`\\nattempt 1: retry, HTTP 200, unknown transport error, id ${unreadId}, [\\d.]+ ms\\n`));
    assert.match(
      before.out,
      new RegExp(`\\nattempt 2: OK, HTTP 200, id ${apnsId}, [\\d.]+ ms \\(started [\\d.]+ ms after the first\\)\\n`),
    );
    assert.match(before.out, /\nanswer: +OK after \d+ ms\n/);
    assert.match(before.out, /\nreceipt: +no receipt yet\n$/);

    const acked = await post(`${publicUrl}/api/v1/ack`, {
      id: 'ack-cli',
      platform: 'apple',
      type: 'message',
      received_at: 1_893_456_000_000,
    });
    assert.equal(acked.text, '{"status":"OK"}\n');
    const after = await traceCommand(['ack-cli', '--config', configFile]);
    assert.equal(after.code, 0, after.err);
    assert.match(after.out, /\nreceipt: +\S+Z \(device received it at 2030-01-01T00:00:00\.000Z\)\n$/);

    const json = await traceCommand(['--server-id', 'srv-cli', '--json', '--config', configFile]);
    assert.equal(json.code, 0, json.err);
    const body = JSON.parse(json.out) as { notifications: Array<{ ack_id: string; receipt?: unknown }> };
    assert.equal(body.notifications[0]!.ack_id, 'ack-cli');
    assert.ok(body.notifications[0]!.receipt);
  });

  it('exit 2 for an ack id the proxy does not know, saying how many it keeps', async () => {
    const run = await traceCommand(['never-sent', '--config', configFile]);
    assert.equal(run.code, 2);
    assert.equal(run.out, '');
    assert.match(run.err, /^push-proxy: trace: no notification with ack_id "never-sent" among the last 1000/);
  });

  it('exit 2 when no proxy answers at the configured address', async () => {
    const port = await freePort();
    const lonely = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ AdminListenAddress: `127.0.0.1:${port}`, ListenAddress: '127.0.0.1:1' }),
    );
    const run = await traceCommand(['ack-cli', '--config', lonely], {});
    assert.equal(run.code, 2);
    assert.match(
      run.err,
      new RegExp(
        `^push-proxy: cannot reach the proxy at http://127\\.0\\.0\\.1:${port}/api/v1/trace\\?ack_id=\\S+ \\(ECONNREFUSED\\)\\. Is it running`,
      ),
    );
  });

  it('exit 2 for wrong arguments, with the usage; --help exits 0', async () => {
    for (const args of [[], ['a', 'b'], ['a', '--post-id', 'p'], ['--frobnicate']]) {
      const run = await traceCommand([...args, '--config', configFile]);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.err, /^push-proxy: wrong arguments for trace: .*\nUsage: push-proxy trace ACK_ID/, args.join(' '));
    }
    const help = await traceCommand(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: push-proxy trace ACK_ID/);
  });
});
