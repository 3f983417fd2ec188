/**
 * Finding the configuration without --config: our config/push-proxy.json, then the original's
 * mattermost-push-proxy.json where the original looks for it; the banner and /version name the file read;
 * --require-config and PUSH_PROXY_REQUIRE_CONFIG turn "no file" into exit code 2 instead of test mode.
 *
 * Every child process gets TMPDIR set to a directory of the test's own, so the machine's shared /tmp is never
 * searched nor written: each layout is root/tmp (TMPDIR), root/project/config (../config) and
 * root/project/app (the working directory).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfigCandidates } from '../src/config/load';
import { listeningUrl, runCli, stop, type Cli } from './cli-process';
import { layout, put, type Layout } from './config-layout';
import { APPLE_TOKEN, get, post, startApnsFixture, writeTemp, type ApnsFixture } from './support';

describe('config discovery: the push-proxy command', () => {
  let apns: ApnsFixture;
  let caFile: string;

  before(async () => {
    apns = await startApnsFixture();
    caFile = writeTemp(apns.dir, 'ca.pem', apns.ca.certPem);
  });
  after(() => apns?.close());

  /** A configuration as an operator of the original would have it, its APNs entry pointing at the test peer. */
  const originalConfig = (fields: Record<string, unknown> = {}): object => ({
    ListenAddress: ':8066',
    ApplePushSettings: [apns.entry()],
    ...fields,
  });

  function start(l: Layout, args: string[] = [], env: Record<string, string> = {}): Cli {
    return runCli(args, { TMPDIR: l.tmp, NODE_EXTRA_CA_CERTS: caFile, ...env }, l.cwd);
  }

  /** Starts, and returns what the banner and /version say about the configuration. */
  async function started(
    cli: Cli,
  ): Promise<{ url: string; banner: { mode: string; config: string; msg: string }; version: { mode: string; config: string } }> {
    const url = await listeningUrl(cli);
    const banner = JSON.parse(await cli.waitFor(/Push Proxy listening/)) as { mode: string; config: string; msg: string };
    const version = JSON.parse((await get(`${url}/version`)).text) as { mode: string; config: string };
    return { url, banner, version };
  }

  async function expectStartsWith(l: Layout, file: string): Promise<void> {
    const cli = start(l);
    try {
      const { banner, version } = await started(cli);
      assert.equal(banner.mode, 'eas');
      assert.equal(banner.config, file);
      assert.ok(banner.msg.includes(file), banner.msg);
      assert.equal(version.mode, 'eas');
      assert.equal(version.config, file);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  }

  it('config/mattermost-push-proxy.json: eas mode, named by the banner and /version, and its APNs entry is used', async () => {
    const l = layout();
    const file = put(path.join(l.cwd, 'config', 'mattermost-push-proxy.json'), originalConfig());
    const cli = start(l);
    try {
      const { url, banner, version } = await started(cli);
      assert.equal(banner.mode, 'eas');
      assert.equal(banner.config, file);
      assert.deepEqual({ mode: version.mode, config: version.config }, { mode: 'eas', config: file });
      const before = apns.peer.receivedFor(APPLE_TOKEN).length;
      const answer = await post(`${url}/api/v1/send_push`, {
        platform: 'apple_rn',
        server_id: 's',
        device_id: APPLE_TOKEN,
        type: 'message',
        message: 'x',
      });
      assert.equal(answer.text, '{"status":"OK"}\n');
      assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, before + 1);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('../config/mattermost-push-proxy.json', async () => {
    const l = layout();
    await expectStartsWith(l, put(path.join(l.parent, 'config', 'mattermost-push-proxy.json'), originalConfig()));
  });

  it('mattermost-push-proxy.json in the temporary directory (TMPDIR)', async () => {
    const l = layout();
    await expectStartsWith(l, put(path.join(l.tmp, 'mattermost-push-proxy.json'), originalConfig()));
  });

  it('mattermost-push-proxy.json in the working directory', async () => {
    const l = layout();
    await expectStartsWith(l, put(path.join(l.cwd, 'mattermost-push-proxy.json'), originalConfig()));
  });

  it('config/push-proxy.json wins over every mattermost-push-proxy.json', async () => {
    const l = layout();
    const ours = put(path.join(l.cwd, 'config', 'push-proxy.json'), originalConfig());
    for (const dir of [l.tmp, path.join(l.cwd, 'config'), path.join(l.parent, 'config'), l.cwd])
      put(path.join(dir, 'mattermost-push-proxy.json'), originalConfig());
    await expectStartsWith(l, ours);
  });

  it("Workers: the primary's banner and every worker's /version name the file", async () => {
    const l = layout();
    const file = put(path.join(l.parent, 'config', 'mattermost-push-proxy.json'), originalConfig({ Workers: 2 }));
    const cli = start(l);
    try {
      const { url, banner } = await started(cli);
      assert.match(banner.msg, /with 2 workers/);
      assert.equal(banner.config, file);
      for (let i = 0; i < 4; i++) {
        // A fresh connection each time, so the primary hands them to both workers.
        assert.equal((await versionOnNewConnection(url)).config, file);
      }
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  for (const [how, args, env] of [
    ['--require-config', ['--require-config'], {}],
    ['PUSH_PROXY_REQUIRE_CONFIG=true', [], { PUSH_PROXY_REQUIRE_CONFIG: 'true' }],
  ] as const) {
    it(`${how} with no file: exit code 2, naming every path looked at and how to mount one`, async () => {
      const l = layout();
      const cli = start(l, [...args], env);
      try {
        // Bounded: a proxy that starts anyway (the regression) would otherwise keep the test waiting forever.
        const code = await Promise.race([cli.exited, sleep(30_000, 'still running after 30 s', { ref: false })]);
        assert.equal(code, 2, `exit code ${code}; stdout: ${cli.output()} stderr: ${cli.stderr()}`);
        const stderr = cli.stderr();
        assert.match(stderr, /^push-proxy: configuration error: no configuration file found/);
        assert.ok(stderr.includes(how), stderr);
        for (const candidate of defaultConfigCandidates(l.cwd, l.tmp))
          assert.ok(stderr.includes(candidate), `${candidate} is not named in: ${stderr}`);
        assert.match(stderr, /-v \/etc\/push-proxy:\/app\/config:ro/);
        assert.match(stderr, /ConfigMap or Secret mounted at \/app\/config/);
        assert.doesNotMatch(cli.output(), /Push Proxy listening/);
      } finally {
        cli.child.kill('SIGKILL');
      }
    });

    it(`${how} with PUSH_PROXY_MODE=test and no file: the built-in test mode`, async () => {
      const l = layout();
      const cli = start(l, [...args], { ...env, PUSH_PROXY_MODE: 'test' });
      try {
        const { banner, version } = await started(cli);
        assert.equal(banner.mode, 'test');
        assert.equal(banner.config, 'built-in');
        assert.deepEqual({ mode: version.mode, config: version.config }, { mode: 'test', config: 'built-in' });
        await cli.waitFor(/built-in sandbox peers/);
        assert.equal(await stop(cli), 0);
      } finally {
        cli.child.kill('SIGKILL');
      }
    });
  }

  it('--require-config with a file found: starts with it', async () => {
    const l = layout();
    const file = put(path.join(l.tmp, 'mattermost-push-proxy.json'), originalConfig());
    const cli = start(l, ['--require-config']);
    try {
      const { banner } = await started(cli);
      assert.equal(banner.config, file);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('no flag, no file: test mode as before, "built-in" in the banner and /version', async () => {
    const l = layout();
    const cli = start(l);
    try {
      const { banner, version } = await started(cli);
      assert.equal(banner.mode, 'test');
      assert.equal(banner.config, 'built-in');
      assert.equal(version.config, 'built-in');
      // The inspector shows one server id at a time in test mode: the warning says how to ask for one.
      const warning = JSON.parse(await cli.waitFor(/TEST MODE/)) as { msg: string };
      assert.ok(warning.msg.includes(`/inspect?server_id=YOUR_SERVER_ID`), warning.msg);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('healthcheck reads the same file as the server (../config/mattermost-push-proxy.json) and probes its port', async () => {
    const l = layout();
    const port = await freePort();
    put(path.join(l.parent, 'config', 'mattermost-push-proxy.json'), originalConfig({ ListenAddress: `127.0.0.1:${port}` }));
    // An empty value is ignored, so the file's ListenAddress is used by both.
    const env = { PUSH_PROXY_LISTEN_ADDRESS: '' };
    const cli = start(l, [], env);
    try {
      const { url } = await started(cli);
      assert.equal(url, `http://127.0.0.1:${port}`);
      assert.equal(await start(l, ['healthcheck'], env).exited, 0);
      assert.equal(await stop(cli), 0);
      assert.equal(await start(l, ['healthcheck'], env).exited, 1);
    } finally {
      cli.child.kill('SIGKILL');
      rmSync(l.root, { recursive: true, force: true });
    }
  });
});

function versionOnNewConnection(url: string): Promise<{ config: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/version`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(JSON.parse(text) as { config: string }));
      })
      .on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
