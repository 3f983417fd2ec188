/**
 * `npm run soak [-- --count N --seconds S]`: the proxy as an operator runs it, under a steady stream of
 * notifications of which a third meet a fault, checked one by one.
 *
 * In this process: the sandbox APNs and FCM peers (fresh credentials), programmed per device token from the
 * fault plan in bench/soak-checks.ts, and a paced client with bounded concurrency. The proxy is a child
 * process (`node dist/src/cli.js --config <generated>`, eas mode, log at info level to a file), trusting the
 * peers' CA through NODE_EXTRA_CA_CERTS. Every notification has its own token and ack_id, so each answer is
 * matched to what the peers saw; peer receipts and answers are timed on this process's one clock.
 *
 * Checks (any failure: exit code 1): every request gets a definite answer (HTTP 200, status OK/REMOVE/FAIL)
 * within SendTimeoutSec + 2 s, with the outcome its fault kind expects; OK means delivered exactly once,
 * REMOVE and FAIL mean not delivered; no request reaches a peer after its notification was answered; every
 * peer exchange has ended once all are answered; the proxy's resident memory at the end is at most 20 %
 * above its value after warm-up (the first 10 % of notifications answered); the log names no device token in
 * full; the proxy exits 0 on SIGTERM.
 *
 * Everything listens on and targets 127.0.0.1; the proxy runs under `timeout`, so nothing outlives the run.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { ApnsPeer } from '../src/sandbox/apns-peer';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { freePort, killAllStarted, ProxyProcess } from './processes';
import { writeRunCredentials } from './common';
import {
  CHECKS,
  faultKinds,
  judge,
  judgeRss,
  percentile,
  planFaults,
  table,
  type Outcome,
  type PeerReceipt,
  type SentRequest,
} from './soak-checks';

interface Options {
  count: number;
  seconds: number;
  concurrency: number;
  sendTimeoutSec: number;
  retryTimeoutSec: number;
  keep: boolean;
}

const USAGE = `Usage: npm run soak [-- options]
  --count N            notifications to send (default 10000), APNs and FCM alternating
  --seconds S          spread over about S seconds (default 60)
  --concurrency C      at most C requests in flight (default 256)
  --send-timeout SEC   the proxy's SendTimeoutSec (default 4)
  --retry-timeout SEC  the proxy's RetryTimeoutSec (default 1)
  --keep               keep the work directory (config, keys, proxy log); kept anyway when a check fails
`;

const TOPIC = 'com.mattermost.react.native';
const FCM_PROJECT = 'push-proxy-soak';
/** Answers may come this long after SendTimeoutSec. */
const ANSWER_SLACK_MS = 2000;
const MAX_RSS_GROWTH = 0.2;
/**
 * Warm-up: the first 25 % of the notifications answered, and at least the first 5 s of load. Under this load
 * the proxy's RSS settles over about half a minute (10,000 in 60 s: ~117, 122, 133, 137, 138 MB at 10, 25,
 * 50, 75, 100 %; 20,000 in 120 s levels off at ~145 MB) while the V8 heap in use stays at 30-40 MB.
 */
const WARM_UP_SHARE = 0.25;
const WARM_UP_MIN_MS = 5000;
const RSS_SAMPLE_MS = 250;
/** After the last answer, how long every peer exchange gets to end. */
const SETTLE_MS = 5000;

function parseOptions(argv: string[]): Options {
  const options: Options = { count: 10_000, seconds: 60, concurrency: 256, sendTimeoutSec: 4, retryTimeoutSec: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const number = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${arg} needs a positive number\n${USAGE}`);
      return v;
    };
    if (arg === '--count') options.count = Math.round(number());
    else if (arg === '--seconds') options.seconds = number();
    else if (arg === '--concurrency') options.concurrency = Math.round(number());
    else if (arg === '--send-timeout') options.sendTimeoutSec = Math.round(number());
    else if (arg === '--retry-timeout') options.retryTimeoutSec = Math.round(number());
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  return options;
}

function vmRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

const apnsToken = (index: number): string => createHash('sha256').update(`soak-apns-${index}`).digest('hex');
/** A prefix the log check can find: redactToken keeps 8 characters, `fcmsoak` and one more. */
const fcmToken = (index: number): string => `fcmsoak${createHash('sha256').update(`soak-fcm-${index}`).digest('hex').slice(0, 40)}`;

interface Sender {
  /** `written`: when the whole request had been handed to the socket (a new connection's set-up included). */
  send(body: string): Promise<{ status: number; text: string; written: number }>;
  close(): void;
}

function sender(baseUrl: string, concurrency: number, timeoutMs: number): Sender {
  const url = new URL('/api/v1/send_push', baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  return {
    send: (body) =>
      new Promise((resolve, reject) => {
        let written = NaN;
        const req = http.request(
          url,
          { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-length': Buffer.byteLength(body) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), written }));
            res.on('error', reject);
          },
        );
        req.on('finish', () => (written = Date.now()));
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('the soak reads /proc: it runs on Linux only');
  const wallStart = Date.now();
  const sendTimeoutMs = options.sendTimeoutSec * 1000;
  const retryTimeoutMs = Math.min(options.retryTimeoutSec, options.sendTimeoutSec) * 1000;
  const answerWithinMs = sendTimeoutMs + ANSWER_SLACK_MS;
  const lifetimeSec = Math.ceil(options.seconds + options.sendTimeoutSec + 120);
  const work = mkdtempSync(path.join(os.tmpdir(), 'push-proxy-soak-'));
  const log = (text: string): void => void process.stderr.write(`${text}\n`);

  const cleanups: Array<() => Promise<void> | void> = [];
  const watchdog = setTimeout(() => {
    log(`soak: still running after ${lifetimeSec} s; stopping everything`);
    killAllStarted();
    process.exit(1);
  }, lifetimeSec * 1000);
  process.once('SIGINT', () => {
    killAllStarted();
    process.exit(130);
  });

  let passed = false;
  try {
    // Fresh credentials, written as an operator's would be.
    const { serverTls, caFile, authKey, keyFile } = writeRunCredentials(work, 'Push Proxy Soak CA');

    const apns = new ApnsPeer({
      tls: serverTls,
      host: '127.0.0.1',
      tokenKeys: [{ keyId: authKey.keyId, teamId: authKey.teamId, publicKeyPem: authKey.publicKeyPem, topics: [TOPIC] }],
    });
    await apns.start();
    cleanups.push(() => apns.close());
    const fcm = new FcmPeer({ tls: serverTls, host: '127.0.0.1' });
    await fcm.start();
    cleanups.push(() => fcm.close());
    const { account, publicKeyPem } = createGoogleServiceAccount(fcm.tokenUri, FCM_PROJECT);
    fcm.addServiceAccount(account.client_email, publicKeyPem, FCM_PROJECT);
    const serviceFile = path.join(work, 'service-account.json');
    writeFileSync(serviceFile, JSON.stringify(account, null, 2), { mode: 0o600 });

    const port = await freePort();
    const logFile = path.join(work, 'push-proxy.log');
    const configFile = path.join(work, 'push-proxy.json');
    writeFileSync(
      configFile,
      JSON.stringify(
        {
          Mode: 'eas',
          ListenAddress: `127.0.0.1:${port}`,
          SendTimeoutSec: options.sendTimeoutSec,
          RetryTimeoutSec: options.retryTimeoutSec,
          EnableFileLog: true,
          EnableMetrics: true,
          LogFileLocation: logFile,
          ApplePushSettings: [
            {
              Type: 'apple_rn',
              ApplePushTopic: TOPIC,
              AppleAuthKeyFile: keyFile,
              AppleAuthKeyID: authKey.keyId,
              AppleTeamID: authKey.teamId,
              AppleEndpoint: apns.url,
            },
          ],
          AndroidPushSettings: [{ Type: 'android_rn', ServiceFileLocation: serviceFile, FcmEndpoint: fcm.url }],
        },
        null,
        2,
      ),
    );
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!/^(https?_proxy|no_proxy|all_proxy|push_proxy_.*|node_options)$/i.test(key)) env[key] = value;
    }
    env.NODE_EXTRA_CA_CERTS = caFile;
    const cli = path.resolve(__dirname, '..', 'src', 'cli.js');
    const proxy = new ProxyProcess('proxy', cli, configFile, work, env, lifetimeSec);
    cleanups.push(() => proxy.stop());
    const baseUrl = `http://127.0.0.1:${port}`;
    await proxy.waitReady(baseUrl);
    const proxyPid = proxy.pid;

    // The plan: one token per notification, programmed before anything is sent.
    const kinds = faultKinds(retryTimeoutMs);
    const plan = planFaults(options.count, kinds);
    const runId = Date.now().toString(36);
    // Tokens are unique: a request that reached a peer is matched by its token, even one cut off before its body.
    const ackByToken = new Map<string, string>();
    const bodies = plan.map(({ platform, kind }, index) => {
      const token = platform === 'apple' ? apnsToken(index) : fcmToken(index);
      ackByToken.set(token, `soak-${runId}-${index}`);
      if (platform === 'apple' && kind.apns.length > 0) apns.setDeviceBehaviour(token, kind.apns);
      if (platform === 'android' && kind.fcm.length > 0) fcm.setTokenBehaviour(token, kind.fcm);
      return JSON.stringify({
        platform: platform === 'apple' ? 'apple_rn-v2' : 'android_rn-v2',
        server_id: 'soak',
        device_id: token,
        type: 'message',
        version: 'v2',
        channel_name: 'Soak',
        message: `soak ${index}`,
        ack_id: `soak-${runId}-${index}`,
        post_id: `post-${runId}-${index}`,
      });
    });
    const requests: SentRequest[] = plan.map(({ platform, kind }, index) => ({
      ackId: `soak-${runId}-${index}`,
      platform,
      kindId: kind.id,
      expected: kind.expected[platform],
      sentAt: 0,
    }));
    log(
      `soak: ${options.count} notifications over ~${options.seconds} s, at most ${options.concurrency} in flight; ` +
        `SendTimeoutSec ${options.sendTimeoutSec}, RetryTimeoutSec ${options.retryTimeoutSec}; work dir ${work}`,
    );

    // Paced sends: notification i is due at i / rate; a send waits while `concurrency` are in flight.
    const client = sender(baseUrl, options.concurrency, answerWithinMs + 10_000);
    cleanups.push(() => client.close());
    const rate = options.count / options.seconds;
    const soakDelay = monitorEventLoopDelay({ resolution: 10 });
    soakDelay.enable();
    const loadStart = Date.now();

    // RSS: sampled all along; the warm-up value is the first sample after warm-up. The proxy's heap is read then
    // and at the end, to tell a heap that grows from memory outside it.
    const rss = { warmKb: 0, peakKb: 0, startKb: vmRssKb(proxyPid), endKb: 0 };
    const heap = { warm: NaN, end: NaN };
    let proxyStallMs = 0;
    let answered = 0;
    const warmUpAt = Math.max(1, Math.ceil(options.count * WARM_UP_SHARE));
    /** RSS at 10, 50 and 75 % answered, to show the trend behind the one check. */
    const milestones = [0.1, 0.5, 0.75].map((share) => ({ share, kb: 0 }));
    const sampler = setInterval(() => {
      try {
        const kb = vmRssKb(proxyPid);
        rss.peakKb = Math.max(rss.peakKb, kb);
        if (rss.warmKb === 0 && answered >= warmUpAt && Date.now() - loadStart >= WARM_UP_MIN_MS) {
          rss.warmKb = kb;
          void proxyMetrics(baseUrl).then((m) => {
            heap.warm = m.heapUsedBytes;
            proxyStallMs = Math.max(proxyStallMs, m.eventLoopMaxMs || 0);
          });
        }
        for (const m of milestones) if (m.kb === 0 && answered >= options.count * m.share) m.kb = kb;
      } catch {
        // The proxy is gone: the answers say so.
      }
    }, RSS_SAMPLE_MS);
    cleanups.push(() => clearInterval(sampler));
    let next = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    await new Promise<void>((resolve) => {
      const finishOne = (): void => {
        inFlight--;
        answered++;
        if (answered === options.count) resolve();
        else pump();
      };
      const pump = (): void => {
        const due = Math.min(options.count, Math.floor(((Date.now() - loadStart) / 1000) * rate) + 1);
        while (next < due && inFlight < options.concurrency) {
          const request = requests[next]!;
          const body = bodies[next]!;
          next++;
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          request.sentAt = Date.now();
          client.send(body).then(
            ({ status, text, written }) => {
              request.answeredAt = Date.now();
              request.writtenAt = written;
              request.httpStatus = status;
              const outcome = status === 200 ? parseOutcome(text) : undefined;
              if (outcome) request.outcome = outcome;
              else request.problem = `HTTP ${status}: ${text.trim().slice(0, 200)}`;
              finishOne();
            },
            (err: Error) => {
              request.answeredAt = Date.now();
              request.problem = `no answer: ${err.message}`;
              finishOne();
            },
          );
        }
      };
      const ticker = setInterval(() => {
        pump();
        if (next >= options.count) clearInterval(ticker);
      }, 5);
      cleanups.push(() => clearInterval(ticker));
      if (options.count === 0) resolve();
    });
    const loadSec = (Date.now() - loadStart) / 1000;

    // Every exchange a peer saw should end soon after the last answer (a hang the proxy gave up on is
    // cancelled by it); the end RSS is read once they have.
    const settleDeadline = Date.now() + SETTLE_MS;
    const open = (): number => apns.received.filter((r) => !r.endedAt).length + fcm.received.filter((r) => !r.endedAt).length;
    while (open() > 0 && Date.now() < settleDeadline) await new Promise((r) => setTimeout(r, 100));
    clearInterval(sampler);
    soakDelay.disable();
    rss.endKb = vmRssKb(proxyPid);
    const soakStallMs = soakDelay.max / 1e6;
    const endMetrics = await proxyMetrics(baseUrl);
    heap.end = endMetrics.heapUsedBytes;
    proxyStallMs = Math.max(proxyStallMs, endMetrics.eventLoopMaxMs || 0);
    const warmedUp = rss.warmKb > 0;

    const receipts: PeerReceipt[] = [
      ...apns.received.map((r): PeerReceipt => ({
        platform: 'apple',
        ackId: matchAck(ackByToken.get(r.token), ackIdOf(r.payload)),
        receivedAt: r.receivedAt.getTime(),
        endedAt: r.endedAt?.getTime(),
        delivery: r.delivered ? 'yes' : r.connectionLost && r.sentStatus === 200 ? 'unknown' : 'no',
        drop: r.behaviour === 'closeConnection',
        collateral: r.connectionLost === true && r.behaviour !== 'closeConnection',
      })),
      // HTTP/1.1: one request per connection at a time, so a dropped connection is the request's own fault.
      ...fcm.received.map((r): PeerReceipt => ({
        platform: 'android',
        ackId: matchAck(ackByToken.get(r.token ?? ''), typeof r.data?.ack_id === 'string' ? r.data.ack_id : undefined),
        receivedAt: r.receivedAt.getTime(),
        endedAt: r.endedAt?.getTime(),
        delivery: r.delivered ? 'yes' : 'no',
        drop: false,
        collateral: false,
      })),
    ];
    // One SIGTERM to the proxy itself: `timeout` would send it twice (to its child and to its process group),
    // and the proxy takes a second one as an operator insisting (exit 1).
    process.kill(proxyPid, 'SIGTERM');
    for (let waited = 0; !proxy.exited && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    await proxy.stop();
    const exitStatus = proxy.exitStatus;

    // The log, complete once the proxy has exited: no device token in it beyond what redactToken keeps, and
    // one line per notification with the outcome answered and the attempts made.
    const logText = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const logLines = logText === '' ? 0 : logText.split('\n').length - 1;
    const apnsTokens = new Set(plan.map((_, i) => (i % 2 === 0 ? apnsToken(i) : '')));
    const leakedTokens =
      (logText.match(/[0-9a-f]{64}/g) ?? []).filter((t) => apnsTokens.has(t)).length + (logText.match(/fcmsoak[0-9a-f]{2,}/g) ?? []).length;
    const logged = outcomeLines(logText);
    for (const request of requests) {
      const lines = logged.get(request.ackId) ?? [];
      request.logged = lines.map((l) => l.outcome);
      if (lines.length === 1) request.attempts = lines[0]!.attempts;
    }

    const orderingToleranceMs = Math.ceil(soakStallMs);
    const verdict = judge(requests, receipts, { answerWithinMs, orderingToleranceMs });
    const rssVerdict = warmedUp ? judgeRss(rss.warmKb, rss.endKb, MAX_RSS_GROWTH) : { ok: true, growth: NaN };
    const wallSec = (Date.now() - wallStart) / 1000;

    // ---- report
    // Past half an attempt's time, a stall alone can turn an answer into a timeout and a retry.
    const stallLimitMs = retryTimeoutMs / 2;
    const overloaded = soakStallMs > stallLimitMs || proxyStallMs > stallLimitMs;
    const out: string[] = [];
    const mb = (kb: number): string => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(1)} MB` : '-');
    const ms = (v: number): string => (Number.isFinite(v) ? `${Math.round(v)} ms` : '-');
    const totals: Record<Outcome, number> = { OK: 0, REMOVE: 0, FAIL: 0 };
    for (const r of requests) if (r.outcome) totals[r.outcome]++;
    out.push(
      `Soak: ${options.count} notifications (APNs and FCM alternating) in ${loadSec.toFixed(1)} s (${(options.count / loadSec).toFixed(0)}/s), ` +
        `at most ${maxInFlight} in flight; proxy: node dist/src/cli.js, eas mode, SendTimeoutSec ${options.sendTimeoutSec}, RetryTimeoutSec ${options.retryTimeoutSec}, log at info to a file.`,
      '',
      table([
        [
          'fault kind',
          'platform',
          'sent',
          'expected',
          'OK',
          'REMOVE',
          'FAIL',
          'peer requests',
          'deliveries',
          'unknown fate',
          'exposed',
          'p50',
          'max',
        ],
        ...[...verdict.kinds]
          .sort(
            (a, b) =>
              kinds.findIndex((k) => k.id === a.kindId) - kinds.findIndex((k) => k.id === b.kindId) || a.platform.localeCompare(b.platform),
          )
          .map((k) => [
            k.kindId,
            k.platform,
            k.sent,
            k.expected,
            k.outcomes.OK,
            k.outcomes.REMOVE,
            k.outcomes.FAIL,
            k.receipts,
            k.deliveries,
            k.unknownDeliveries,
            k.exposed,
            ms(percentile(k.latenciesMs, 50)),
            ms(percentile(k.latenciesMs, 100)),
          ]),
      ]),
      "peer requests: every request that reached the peer (attempts and the library's re-sends); deliveries: complete 200s that left",
      "on an open connection; unknown fate: 200s written as the connection dropped; exposed: in flight when another notification's fault",
      'dropped the shared connection (such a notification may end OK or FAIL; its deliveries are judged all the same).',
      '',
    );
    const rows: Array<[string, string | number, string]> = [
      ['notifications answered OK / REMOVE / FAIL', `${totals.OK} / ${totals.REMOVE} / ${totals.FAIL}`, ''],
      [
        'answer latency p50 / p99 / max',
        `${ms(percentile(verdict.latenciesMs, 50))} / ${ms(percentile(verdict.latenciesMs, 99))} / ${ms(percentile(verdict.latenciesMs, 100))}`,
        `limit ${answerWithinMs} ms`,
      ],
      ['OK delivered exactly once', verdict.okDeliveredOnce, ''],
      [
        'possible duplicates (one delivery, and a 200 written as the connection dropped)',
        verdict.possibleDuplicates,
        'reported, not judged',
      ],
      ...CHECKS.map((check): [string, number, string] => [check, verdict.counts[check], verdict.counts[check] === 0 ? 'pass' : 'FAIL']),
      [
        'latest receipt relative to its answer',
        ms(verdict.maxReceiptAfterAnswerMs),
        `tolerance ${orderingToleranceMs} ms (the soak's longest stall)`,
      ],
      [
        'event-loop stall max: soak process / proxy',
        `${ms(soakStallMs)} / ${ms(proxyStallMs)}`,
        overloaded ? `OVERLOADED (> ${ms(stallLimitMs)})` : `under ${ms(stallLimitMs)}`,
      ],
      [
        'proxy RSS at start / after warm-up / peak / end',
        `${mb(rss.startKb)} / ${warmedUp ? mb(rss.warmKb) : '-'} / ${mb(rss.peakKb)} / ${mb(rss.endKb)}`,
        `warm-up: first ${WARM_UP_SHARE * 100} % answered and ${WARM_UP_MIN_MS / 1000} s`,
      ],
      ['proxy RSS at 10 / 50 / 75 % answered', milestones.map((m) => (m.kb ? mb(m.kb) : '-')).join(' / '), ''],
      ['proxy V8 heap used after warm-up / end', `${mb(heap.warm / 1024)} / ${mb(heap.end / 1024)}`, ''],
      [
        'proxy RSS growth after warm-up',
        warmedUp ? `${(rssVerdict.growth * 100).toFixed(1)} %` : '-',
        !warmedUp
          ? 'not judged: the run ended within its warm-up'
          : rssVerdict.ok
            ? `pass (<= ${MAX_RSS_GROWTH * 100} %)`
            : `FAIL (> ${MAX_RSS_GROWTH * 100} %)`,
      ],
      ['proxy log lines / bytes', `${logLines} / ${logText.length}`, logLines > 0 ? 'pass' : 'FAIL (empty)'],
      ['device tokens in full in the log', leakedTokens, leakedTokens === 0 ? 'pass' : 'FAIL'],
      ['proxy exit status on SIGTERM', String(exitStatus), exitStatus === 0 ? 'pass' : 'FAIL'],
      ['wall time', `${wallSec.toFixed(1)} s`, ''],
    ];
    out.push(table([['figure', 'value', 'check'], ...rows]));
    const failures =
      verdict.problems.length +
      (rssVerdict.ok ? 0 : 1) +
      (logLines > 0 ? 0 : 1) +
      (leakedTokens === 0 ? 0 : 1) +
      (exitStatus === 0 ? 0 : 1);
    if (verdict.problems.length > 0) {
      out.push('', `Problems (${verdict.problems.length}; at most 5 of each check):`);
      for (const check of CHECKS) {
        for (const p of verdict.problems.filter((q) => q.check === check).slice(0, 5))
          out.push(`  ${p.check}: ${p.ackId ?? ''} ${p.detail}`);
      }
    }
    if (overloaded) {
      out.push(
        '',
        `The machine was overloaded: a process stalled ${ms(Math.max(soakStallMs, proxyStallMs))}, against attempts of ${retryTimeoutMs} ms. Answers then time out`,
        'although the peer answered in time, and retries deliver twice; run the soak on a quieter machine before blaming the proxy.',
      );
    }
    passed = failures === 0;
    out.push('', passed ? 'soak: every check passed' : `soak: ${failures} check failure(s); work dir kept: ${work}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return passed ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    for (const step of cleanups.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
    killAllStarted();
    if (passed && !options.keep) rmSync(work, { recursive: true, force: true });
  }
}

function parseOutcome(text: string): Outcome | undefined {
  try {
    const status = (JSON.parse(text) as { status?: unknown }).status;
    return status === 'OK' || status === 'REMOVE' || status === 'FAIL' ? status : undefined;
  } catch {
    return undefined;
  }
}

/** The proxy's outcome lines (`push delivered` and the like, JSON fields at the end), by ack_id. */
function outcomeLines(logText: string): Map<string, Array<{ outcome: string; attempts: number }>> {
  const byAck = new Map<string, Array<{ outcome: string; attempts: number }>>();
  for (const line of logText.split('\n')) {
    if (!line.includes('"ack_id"') || !line.includes('"outcome"')) continue;
    let fields: { ack_id?: unknown; outcome?: unknown; attempts?: unknown };
    try {
      fields = JSON.parse(line.slice(line.indexOf('{'))) as typeof fields;
    } catch {
      continue;
    }
    if (typeof fields.ack_id !== 'string' || typeof fields.outcome !== 'string') continue;
    const list = byAck.get(fields.ack_id) ?? [];
    list.push({ outcome: fields.outcome, attempts: typeof fields.attempts === 'number' ? fields.attempts : NaN });
    byAck.set(fields.ack_id, list);
  }
  return byAck;
}

/** The notification a receipt belongs to, by its token; a payload carrying another's ack_id matches none. */
function matchAck(byToken: string | undefined, inPayload: string | undefined): string | undefined {
  if (byToken !== undefined && inPayload !== undefined && byToken !== inPayload) return `${inPayload} (sent to the device of ${byToken})`;
  return byToken ?? inPayload;
}

/** From the proxy's metrics: its V8 heap in use, and its longest event-loop delay since the previous scrape. */
async function proxyMetrics(baseUrl: string): Promise<{ heapUsedBytes: number; eventLoopMaxMs: number }> {
  try {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { heapUsedBytes: value('nodejs_heap_size_used_bytes'), eventLoopMaxMs: value('nodejs_eventloop_lag_max_seconds') * 1000 };
  } catch {
    return { heapUsedBytes: NaN, eventLoopMaxMs: NaN };
  }
}

function ackIdOf(payload: unknown): string | undefined {
  const ack = (payload as { ack_id?: unknown } | undefined)?.ack_id;
  return typeof ack === 'string' ? ack : undefined;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllStarted();
    process.exit(2);
  },
);
