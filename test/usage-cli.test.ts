/**
 * `push-proxy tenants usage` as an operator runs it: a real proxy process in hosted mode with an admin listener,
 * notifications of two tenants through it, then the command (another process, same configuration file) prints
 * their counts; it exits with 2 and says why when nothing listens, for a tenant without counts and for bad
 * arguments, and with 0 for --help.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tenantsAdd } from '../src/commands/tenants';
import { utcDay } from '../src/usage/counts';
import { freePort } from './connect-proxy';
import { listeningUrl, runCli, stop, type Cli } from './cli-process';
import { APPLE_TOKEN, post, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

async function command(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = runCli(['tenants', 'usage', ...args]);
  const code = await cli.exited;
  return { code, stdout: cli.output(), stderr: cli.stderr() };
}

describe('push-proxy tenants usage', () => {
  let apns: ApnsFixture;
  let proxy: Cli;
  let configFile: string;
  const today = utcDay(Date.now());

  before(async () => {
    apns = await startApnsFixture();
    apns.peer.setDeviceBehaviour('d4'.repeat(32), { status: 410, reason: 'Unregistered' });
    const dir = tempDir();
    const tenantsFile = `${dir}/tenants.json`;
    const keys: Record<string, string> = {};
    for (const id of ['acme', 'globex']) keys[id] = /^\s+(pp_\S+)$/m.exec(await tenantsAdd(tenantsFile, { id }))![1]!;
    configFile = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({
        Mode: 'hosted',
        TenantsFile: tenantsFile,
        TrustedProxies: ['127.0.0.0/8'],
        AdminListenAddress: `127.0.0.1:${await freePort()}`,
        ApplePushSettings: [apns.entry()],
      }),
    );
    proxy = runCli(['--config', configFile], { NODE_EXTRA_CA_CERTS: writeTemp(dir, 'ca.pem', apns.ca.certPem) });
    const url = await listeningUrl(proxy);
    const send = async (tenant: string, device = APPLE_TOKEN) => {
      const body = { platform: 'apple_rn-v2', server_id: 'srv', device_id: device, type: 'message', message: 'hi' };
      const answer = await post(`${url}/api/v1/send_push`, body, { Authorization: `Bearer ${keys[tenant]}`, 'X-Forwarded-Proto': 'https' });
      return answer.text.trim();
    };
    assert.equal(await send('acme'), '{"status":"OK"}');
    assert.equal(await send('acme'), '{"status":"OK"}');
    assert.equal(await send('acme', 'd4'.repeat(32)), '{"status":"REMOVE"}');
    assert.equal(await send('globex'), '{"status":"OK"}');
  });
  after(async () => {
    await stop(proxy);
    await apns.close();
  });

  it("prints a tenant's counts, per tenant and per day", async () => {
    const { code, stdout, stderr } = await command(['acme', '--config', configFile]);
    assert.equal(code, 0, stderr);
    const lines = stdout.split('\n');
    assert.match(lines[0]!, /^Usage from \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(UTC days; memory store, 35 days kept\)$/);
    assert.ok(lines.includes('acme     2       1     0      3'), stdout);
    assert.ok(lines.includes(`${today}  acme    apple_rn   2       1     0      3`), stdout);
    assert.doesNotMatch(stdout, /globex/);
  });

  it('--json prints the API answer; without a tenant every tenant is there', async () => {
    const { code, stdout, stderr } = await command(['--json', `--from=${today}`, '--config', configFile]);
    assert.equal(code, 0, stderr);
    const answer = JSON.parse(stdout) as { from: string; tenants: Array<{ tenant: string; total: number }> };
    assert.equal(answer.from, today);
    assert.deepEqual(
      answer.tenants.map((t) => [t.tenant, t.total]),
      [
        ['acme', 3],
        ['globex', 1],
      ],
    );
  });

  it('a tenant without counts: exit code 2, and the message says so', async () => {
    const { code, stderr } = await command(['initech', '--config', configFile]);
    assert.equal(code, 2);
    assert.match(stderr, /no notifications of tenant "initech" counted from/);
  });

  it('nothing listening: exit code 2, and the message names the address asked', async () => {
    const port = await freePort();
    const lonely = writeTemp(tempDir(), 'push-proxy.json', JSON.stringify({ AdminListenAddress: `:${port}` }));
    const { code, stderr } = await command(['--config', lonely]);
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`cannot reach the proxy at http://127\\.0\\.0\\.1:${port}/api/v1/usage \\(ECONNREFUSED\\)`));
  });

  it('bad arguments: exit code 2 with the reason and the usage', async () => {
    for (const args of [['--from', '2026-02-30'], ['acme', 'globex'], ['--since=yesterday']]) {
      const { code, stderr } = await command([...args, '--config', configFile]);
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, /^push-proxy: tenants usage: .+\n\nUsage:\n {2}push-proxy tenants usage /, args.join(' '));
    }
  });

  it('--help prints the usage, exit code 0', async () => {
    const { code, stdout } = await command(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage:\n {2}push-proxy tenants usage \[TENANT\]/);
  });
});
