/** Which outbound proxy a connection takes, from OutboundProxy and the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeOutboundProxy, resolveOutboundProxy, type OutboundProxySettings } from '../src/transport/outbound-proxy';

const USER = 'relay';
const PASSWORD = 'pass-word.1';
const PASSWORD_IN_URL = encodeURIComponent(PASSWORD);

describe('resolveOutboundProxy', () => {
  const target = { host: 'api.push.apple.com', port: 443 };
  const resolve = (env: Record<string, string | undefined>, configured?: string, to = target): string | undefined =>
    resolveOutboundProxy(to, { configured, env } satisfies OutboundProxySettings)?.href;

  it('no proxy settings: a direct connection', () => {
    assert.equal(resolve({}), undefined);
    assert.equal(resolve({ HTTPS_PROXY: '', HTTP_PROXY: '  ' }), undefined);
  });

  it('HTTPS_PROXY, https_proxy, HTTP_PROXY, http_proxy, in that order; empty values do not count', () => {
    const all = { HTTPS_PROXY: 'http://a:1', https_proxy: 'http://b:2', HTTP_PROXY: 'http://c:3', http_proxy: 'http://d:4' };
    assert.equal(resolve(all), 'http://a:1/');
    assert.equal(resolve({ ...all, HTTPS_PROXY: undefined }), 'http://b:2/');
    assert.equal(resolve({ ...all, HTTPS_PROXY: '', https_proxy: undefined }), 'http://c:3/');
    assert.equal(resolve({ http_proxy: 'http://d:4' }), 'http://d:4/');
  });

  it('a bare host:port means http, credentials are kept for Proxy-Authorization', () => {
    assert.equal(resolve({ HTTPS_PROXY: 'proxy.corp:3128' }), 'http://proxy.corp:3128/');
    const url = resolveOutboundProxy(target, { env: { HTTPS_PROXY: `http://${USER}:${PASSWORD_IN_URL}@proxy.corp:3128` } })!;
    assert.deepEqual([url.username, decodeURIComponent(url.password), url.host], [USER, PASSWORD, 'proxy.corp:3128']);
    assert.equal(describeOutboundProxy(url), 'http://proxy.corp:3128');
  });

  it('OutboundProxy wins over the environment, and NO_PROXY does not apply to it', () => {
    const env = { HTTPS_PROXY: 'http://env:1', NO_PROXY: '*' };
    assert.equal(resolve(env, 'http://configured:8080'), 'http://configured:8080/');
    assert.equal(resolve(env, ''), undefined);
    assert.equal(resolve({}, ' http://configured:8080 '), 'http://configured:8080/');
  });

  it('NO_PROXY: names, domain suffixes, *, IPs, ports, CIDRs, any case, either variable', () => {
    const via = (noProxy: string, host = 'api.push.apple.com', port = 443, extra: Record<string, string> = {}): boolean =>
      resolve({ HTTPS_PROXY: 'http://p:1', NO_PROXY: noProxy, ...extra }, undefined, { host, port }) !== undefined;
    // exact names and domain suffixes (a bare domain covers its subdomains, a leading dot only them)
    assert.equal(via('api.push.apple.com'), false);
    assert.equal(via('apple.com'), false);
    assert.equal(via('push.apple.com'), false);
    assert.equal(via('le.com'), true);
    assert.equal(via('.apple.com'), false);
    assert.equal(via('.apple.com', 'apple.com'), true);
    assert.equal(via('apple.com', 'apple.com'), false);
    assert.equal(via('*.apple.com'), false);
    assert.equal(via('API.Push.Apple.COM.'), false);
    assert.equal(via('x.org', 'API.PUSH.APPLE.COM'), true);
    assert.equal(via('apple.com', 'API.PUSH.APPLE.COM'), false);
    assert.equal(via('example.com, ,  apple.com  '), false);
    assert.equal(via('*'), false);
    assert.equal(via('example.com'), true);
    // ports
    assert.equal(via('apple.com:443'), false);
    assert.equal(via('apple.com:2197'), true);
    assert.equal(via('127.0.0.1:8443', '127.0.0.1', 8443), false);
    assert.equal(via('127.0.0.1:8443', '127.0.0.1', 443), true);
    // IPs and CIDRs
    assert.equal(via('127.0.0.1', '127.0.0.1'), false);
    assert.equal(via('127.0.0.1', '127.0.0.2'), true);
    assert.equal(via('10.0.0.0/8', '10.20.30.40'), false);
    assert.equal(via('10.0.0.0/8', '11.0.0.1'), true);
    assert.equal(via('10.0.0.0/8', 'ten.example'), true);
    assert.equal(via('::1', '::1'), false);
    assert.equal(via('0:0:0:0:0:0:0:1', '[::1]'), false);
    assert.equal(via('[::1]:443', '::1', 443), false);
    assert.equal(via('[::1]:443', '::1', 444), true);
    assert.equal(via('fd00::/8', 'fd12::5'), false);
    assert.equal(via('fd00::/8', '10.0.0.1'), true);
    // the loopback is not exempt by itself (Go's rule is not copied: tests and relays go through proxies too)
    assert.equal(via('', '127.0.0.1'), true);
    assert.equal(via('example.com', 'localhost'), true);
    // the lower-case variable, and NO_PROXY over no_proxy
    assert.equal(resolve({ HTTPS_PROXY: 'http://p:1', no_proxy: 'apple.com' }), undefined);
    assert.equal(resolve({ HTTPS_PROXY: 'http://p:1', NO_PROXY: 'example.com', no_proxy: 'apple.com' }), 'http://p:1/');
  });

  it('an unusable proxy setting is an error that names it and hides the credentials', () => {
    assert.throws(() => resolve({ HTTPS_PROXY: 'socks5://127.0.0.1:1080' }), {
      message:
        'HTTPS_PROXY "socks5://127.0.0.1:1080": only http:// proxies are supported (CONNECT over plain HTTP): use http://[user:password@]host:port',
    });
    assert.throws(() => resolve({ http_proxy: 'https://user:secret@proxy:3128' }), {
      message:
        'http_proxy "https://***@proxy:3128": only http:// proxies are supported (CONNECT over plain HTTP): use http://[user:password@]host:port',
    });
    assert.throws(() => resolve({}, 'http://user:secret@[bad'), {
      message: 'OutboundProxy "http://***@[bad" is not a URL: use http://[user:password@]host:port',
    });
    // an exempt destination never looks at the setting
    assert.equal(resolve({ HTTPS_PROXY: 'socks5://127.0.0.1:1080', NO_PROXY: 'apple.com' }), undefined);
  });
});
