/**
 * `npm run bench [-- --quick]`: the proxy against the thinnest possible relay, on this machine.
 *
 * Starts a fast APNs peer and a fast FCM peer (own processes), the baseline relay (bench/baseline.ts), the
 * proxy as an operator runs it (`node dist/src/cli.js --config <generated>`, eas mode, the default logging:
 * `info`, plain, stdout redirected to a file), and drives both with wrk (else autocannon), alternating baseline
 * and proxy runs (A B B A …) so that drift on a shared machine cancels. Measures requests/s, p50/p99 latency,
 * the relay's CPU seconds per 1,000 notifications and peak RSS (whole process tree, from /proc), checks that
 * every request was answered `{"status":"OK"}`, that every notification reached its peer exactly once and, at
 * `info`, that the proxy logged one delivery line for each, and prints one table with the targets judged.
 * The scenarios are in bench/scenarios.ts, the targets in bench/targets.ts.
 *
 * Everything listens on and targets 127.0.0.1 only; every run is bounded in time; every process it starts
 * stops by itself.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import type { BaselineSettings } from './baseline';
import { countDeliveryLines, DELIVERY_LINE, writeRunCredentials, type PeerStats } from './common';
import { chooseDriver, runLoad, type DriverName, type LoadResult, type LoadTarget } from './driver';
import { ForkedProcess, freePort, killAllStarted, ProxyProcess } from './processes';
import { clockTicks, resetPeaks, treeCpuSeconds, treePeakRssMb, treeRssMb } from './procstat';
import { summarizeProfile } from './profile';
import { BALANCE_TOLERANCE, MAX_REPEATED_ROUNDS, roundsToSetAside, unbalancedRounds, type SteadinessSample } from './host-steadiness';
import { relayLabel, roundsOf, SCENARIOS, selectScenarios, VARIANTS, type RelaySpec, type Scenario, type VariantName } from './scenarios';
import { DEFAULT_LOGGING_APNS, judgeTargets, renderVerdicts, type Comparison, type Side } from './targets';

// ---------------------------------------------------------------- options

interface Options {
  quick: boolean;
  durationSec: number;
  rounds: number;
  warmupSec: number;
  extras: boolean;
  only?: Set<string>;
  driver?: DriverName;
  profile: boolean;
  keep: boolean;
  out?: string;
  json?: string;
  /** bound on waiting for a quiet machine before each run */
  quietWaitSec: number;
  /** replaces dist/src/cli.js: a script taking --config FILE (to bench a variant of the proxy) */
  proxyScript?: string;
  /** extra node options for the proxy (e.g. --max-semi-space-size=64) */
  proxyNodeArgs: string[];
  /** in the baseline's place: another build of the proxy (its cli.js), run with the same config */
  versusScript?: string;
}

const USAGE = `Usage: npm run bench [-- options]
  --quick            short runs (under a minute in all), one scenario of each kind: a smoke test, not a measurement
  --duration SEC     seconds per run (default 5; quick 1)
  --rounds N         A B B A rounds per scenario (default 4, extras half; quick 1)
  --only IDS         comma-separated scenario ids (below)
  --no-extras        leave out the extra rows (bare2, warn, JSON)
  --driver NAME      wrk or autocannon (default: wrk when installed)
  --profile          run the default-logging proxy and the baseline under node --cpu-prof; summarize where their CPU goes
  --out FILE         also write the report (markdown) to FILE
  --json FILE        also write every run's raw numbers to FILE
  --keep             keep the work directory (configs, keys, logs); kept anyway when something fails
  --quiet-wait SEC   before each run, wait up to SEC (default 60; quick 5) for other work on the machine to stop
  --proxy-node-args "ARGS"  node options for the proxy process (e.g. "--max-semi-space-size=64")
  --proxy-script FILE       bench this script instead of dist/src/cli.js (it gets --config FILE)
  --versus FILE             in the baseline's place, another build of the proxy (e.g. a copy of an older
                            dist/src/cli.js) in the same configuration: an A/B of two builds; no targets are judged
Scenarios (every proxy logs to stdout redirected to a file; * extra, q in --quick):
${SCENARIOS.map((s) => `  ${s.id.padEnd(20)} ${s.extra ? '*' : ' '}${s.quick ? 'q' : ' '} ${relayLabel(s.subject)} vs ${relayLabel(s.base)}: ${s.label}`).join('\n')}
`;

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const options: Options = {
    quick,
    // The machine's speed swings within tens of seconds: short runs alternated often cancel more of it (the
    // proxy against itself, --versus: ratios off by up to 8 % at 8 s × 2 rounds, by up to 3 % at 4 s × 4).
    durationSec: quick ? 1 : 5,
    rounds: quick ? 1 : 4,
    warmupSec: quick ? 1 : 3,
    extras: true,
    profile: false,
    keep: false,
    quietWaitSec: quick ? 5 : 60,
    proxyNodeArgs: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') continue;
    else if (arg === '--duration') options.durationSec = Math.max(1, Math.round(Number(value())));
    else if (arg === '--rounds') options.rounds = Math.max(1, Math.round(Number(value())));
    else if (arg === '--only') options.only = new Set(value().split(','));
    else if (arg === '--no-extras') options.extras = false;
    else if (arg === '--driver') options.driver = value() as DriverName;
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--out') options.out = value();
    else if (arg === '--json') options.json = value();
    else if (arg === '--quiet-wait') options.quietWaitSec = Math.max(0, Number(value()));
    else if (arg === '--proxy-script') options.proxyScript = path.resolve(value());
    else if (arg === '--versus') options.versusScript = path.resolve(value());
    else if (arg === '--proxy-node-args') options.proxyNodeArgs = value().split(/\s+/).filter(Boolean);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  if (!Number.isFinite(options.durationSec) || !Number.isFinite(options.rounds)) throw new Error(USAGE);
  return options;
}

// ---------------------------------------------------------------- constants

const TOPIC = 'com.mattermost.bench';
/** an APNs device token: 64 hex digits */
const APPLE_DEVICE_ID = 'ab'.repeat(32);
/** an FCM registration token's shape: an instance id, a colon, a long base64url part */
const ANDROID_DEVICE_ID = `dBenchFcmInstance0000:APA91b${'Q1w2E3r4T5y6'.repeat(11)}`;
const FCM_PROJECT = 'push-proxy-bench';
/** Fails the run if the peer has not seen the last in-flight notification by then. */
const SETTLE_LIMIT_MS = 15_000;
/** Bounds the wait for the proxy's last batched log lines to reach its log file. */
const LOG_SETTLE_MS = 3_000;
/** Before a run: other processes must use less than this share of one core (waited for, bounded). */
const QUIET_LIMIT = 0.1;
/** During a run: more than this share of one core used by other processes marks the run noisy. */
const NOISE_LIMIT = 0.15;

// ---------------------------------------------------------------- relays

interface Relay {
  /** what the report calls it (its configuration) */
  name: string;
  /** in each run's log line */
  logLabel: string;
  baseUrl: string;
  pid(): number;
  /** serves the proxy's /metrics: its success counter is checked against the peer */
  countsSuccess: boolean;
  /** its stdout and stderr (a proxy's), emptied before each run so that disk use stays bounded */
  logFile?: string;
  /** delivery lines it must log per notification: 1 at `info`, 0 at `warn`; undefined: not checked */
  deliveryLinesEach?: 0 | 1;
  stop(): Promise<void>;
}

interface RunResult {
  scenario: string;
  relay: string;
  /** the scenario's yardstick (A) or what is measured against it (B) */
  kind: 'baseline' | 'proxy';
  order: number;
  /** its A B B A round in the scenario (0, 1, …; repeated rounds follow the planned ones) */
  round: number;
  /** left out of the figures: a slowdown of the host hit one side of its round (bench/host-steadiness.ts) */
  setAside?: boolean;
  load: LoadResult;
  peer: PeerStats;
  cpuSec: number;
  /** CPU seconds of the peer (both peers for mixed traffic) the run went to */
  peerCpuSec: number;
  /** CPU seconds of the rest of what the bench started: the load driver, the bench itself, the idle relays */
  harnessCpuSec: number;
  /** notifications the peers received during the run: what the relay did the work for */
  notifications: number;
  rssMb: number;
  /** bytes the relay wrote to its log file during the run (and its last lines after it), if it has one */
  logBytes?: number;
  /** delivery lines of this run's notifications in that file */
  deliveryLines?: number;
  /** how many it had to hold (undefined: not checked) */
  deliveryLinesExpected?: number;
  /** share of all cores busy during the run (relay + peer + driver + everything else) */
  machineBusy: number;
  /** CPU seconds used during the run by processes the bench did not start (other work on the machine) */
  foreignCpuSec: number;
  /** seconds waited for the machine to be quiet before the run */
  waitedSec: number;
  /** other work used more than NOISE_LIMIT of a core during the run */
  noisy: boolean;
  proxySuccess?: number;
  problems: string[];
}

function machineTicks(): { busy: number; total: number } {
  // First line of /proc/stat: cpu user nice system idle iowait irq softirq steal …
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU seconds of the whole machine (all cores) so far, and of what the bench started (itself included). */
function cpuAccounts(): { machineSec: number; ownSec: number } {
  return { machineSec: machineTicks().busy / clockTicks(), ownSec: treeCpuSeconds(process.pid) };
}

/** Share of one core that processes other than the bench's used over `ms`. */
async function foreignLoad(ms: number): Promise<number> {
  const a = cpuAccounts();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuAccounts();
  return Math.max(0, b.machineSec - a.machineSec - (b.ownSec - a.ownSec)) / (ms / 1000);
}

/** Waits (bounded) until other work on the machine uses less than QUIET_LIMIT of a core. */
async function waitForQuiet(maxMs: number, sampleMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < maxMs) {
    if ((await foreignLoad(sampleMs)) < QUIET_LIMIT) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return (Date.now() - started) / 1000;
}

async function scrapeSuccess(baseUrl: string): Promise<number> {
  let res: Response | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
      break;
    } catch (err) {
      if (attempt >= 2)
        throw new Error(`cannot read ${baseUrl}/metrics: ${(err as Error).message} (${String((err as Error).cause ?? '')})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('service_success_total{') || line.startsWith('service_success_total '))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The peers' counts added up: with mixed traffic each notification goes to exactly one of them. */
function addStats(a: PeerStats, b: PeerStats): PeerStats {
  return {
    run: a.run,
    received: a.received + b.received,
    unique: a.unique + b.unique,
    duplicates: a.duplicates + b.duplicates,
    foreign: a.foreign + b.foreign,
    rejected: a.rejected + b.rejected,
    tokenRequests: a.tokenRequests + b.tokenRequests,
  };
}

async function peerStats(peers: ForkedProcess[]): Promise<PeerStats> {
  const all = await Promise.all(peers.map((p) => p.stats()));
  return all.reduce(addStats);
}

async function settle(peers: ForkedProcess[], load: LoadResult): Promise<PeerStats> {
  const deadline = Date.now() + SETTLE_LIMIT_MS;
  let last = await peerStats(peers);
  for (;;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = await peerStats(peers);
    if (now.received === last.received && now.received >= load.ok) return now;
    if (Date.now() > deadline) return now;
    last = now;
  }
}

/** Reads the relay's log until it holds `expected` delivery lines of the run (its writes are batched), bounded. */
async function readDeliveryLog(file: string, run: string, expected: number): Promise<{ bytes: number; lines: number }> {
  const deadline = Date.now() + LOG_SETTLE_MS;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    const lines = countDeliveryLines(text, run);
    if (lines >= expected || Date.now() > deadline) return { bytes: statSync(file, { throwIfNoEntry: false })?.size ?? 0, lines };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The notifications a scenario sends, and the ack_id prefix each peer counts as this run's. */
function loadTargets(scenario: Scenario, run: string): { targets: LoadTarget[]; apnsRun?: string; fcmRun?: string } {
  const apple = (ackPrefix: string): LoadTarget => ({ platform: 'apple_rn-v2', deviceId: APPLE_DEVICE_ID, ackPrefix });
  const android = (ackPrefix: string): LoadTarget => ({ platform: 'android_rn-v2', deviceId: ANDROID_DEVICE_ID, ackPrefix });
  if (scenario.target === 'apns') return { targets: [apple(run)], apnsRun: run };
  if (scenario.target === 'fcm') return { targets: [android(run)], fcmRun: run };
  // Each peer counts only its own platform's ack_ids as this run's: one routed to the wrong peer is foreign there.
  return { targets: [apple(`${run}-a`), android(`${run}-f`)], apnsRun: `${run}-a`, fcmRun: `${run}-f` };
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const root = path.resolve(__dirname, '..', '..');
  const cliPath = path.join(root, 'dist', 'src', 'cli.js');
  if (process.platform !== 'linux') throw new Error('the bench reads /proc: it runs on Linux only');
  const driver = chooseDriver(options.driver);

  // --versus compares two builds of the proxy: a scenario whose B side is the bare relay has nothing to compare.
  const scenarios = selectScenarios(options).filter((s) => !(options.versusScript && 'bare' in s.subject));
  if (scenarios.length === 0) throw new Error(`no scenario selected\n${USAGE}`);
  const runsPlanned = scenarios.reduce((n, s) => n + 4 * roundsOf(s, options.rounds), 0);
  // Each process's hard end: generous, but finite.
  // Room for the rounds measured again after a slowdown of the host, too.
  const lifetimeSec = 120 + (runsPlanned + scenarios.length * MAX_REPEATED_ROUNDS * 4) * (options.durationSec + 20) + 60;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${lifetimeSec} s; stopping everything\n`);
    killAllStarted();
    process.exit(1);
  }, lifetimeSec * 1000);

  const work = mkdtempSync(path.join(os.tmpdir(), 'push-proxy-bench-'));
  const log = (text: string): void => void process.stderr.write(`${text}\n`);
  log(`bench: ${driver}, ${scenarios.length} scenarios, ${runsPlanned} runs of ${options.durationSec} s; work dir ${work}`);

  const cleanups: Array<() => Promise<void>> = [];
  let succeeded = false;
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) await step().catch(() => undefined);
    killAllStarted();
    if (!options.keep && succeeded) rmSync(work, { recursive: true, force: true });
    else {
      for (const file of readdirSync(work).filter((f) => /\.(out|log)$/.test(f))) {
        // The proxies' delivery lines say nothing about a failure: the last other lines.
        const lines = readFileSync(path.join(work, file), 'utf8').trimEnd().split('\n');
        const tail = lines
          .filter((line) => !line.includes(DELIVERY_LINE))
          .slice(-8)
          .join('\n  ');
        if (tail) log(`--- ${file} (last lines):\n  ${tail}`);
      }
      log(`bench: logs, configs and keys are in ${work}`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`bench: ${signal}: stopping`);
    killAllStarted();
    if (!options.keep) rmSync(work, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // Credentials, made fresh: a CA the relays trust through NODE_EXTRA_CA_CERTS, a server certificate
    // for the peers, an APNs .p8 key and a Google service account.
    const { serverTls, caFile, authKey, keyFile } = writeRunCredentials(work, 'Push Proxy Bench CA');

    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (/^(https?_proxy|no_proxy|all_proxy|push_proxy_.*|node_options)$/i.test(key)) continue;
      env[key] = value;
    }
    env.NODE_EXTRA_CA_CERTS = caFile;
    env.BENCH_MAX_LIFETIME_MS = String(lifetimeSec * 1000);

    const peerSettings = { host: '127.0.0.1', certPem: serverTls.certPem, keyPem: serverTls.keyPem };
    const apnsPeer = new ForkedProcess('apns-peer', path.join(__dirname, 'apns-peer.js'), peerSettings, work, env);
    const fcmPeer = new ForkedProcess('fcm-peer', path.join(__dirname, 'fcm-peer.js'), peerSettings, work, env);
    cleanups.push(
      () => apnsPeer.stop(),
      () => fcmPeer.stop(),
    );
    const apnsUrl = `https://127.0.0.1:${await apnsPeer.port}`;
    const fcmUrl = `https://127.0.0.1:${await fcmPeer.port}`;
    const baselineSettings: BaselineSettings = {
      host: '127.0.0.1',
      apnsUrl,
      topic: TOPIC,
      keyPem: authKey.keyPem,
      keyId: authKey.keyId,
      teamId: authKey.teamId,
      fcmUrl,
      fcmProject: FCM_PROJECT,
      fcmMaxSockets: 64,
    };

    const { account } = createGoogleServiceAccount(`${fcmUrl}/token`, FCM_PROJECT);
    const serviceFile = path.join(work, 'service-account.json');
    writeFileSync(serviceFile, JSON.stringify(account, null, 2), { mode: 0o600 });

    const profileDir = path.join(work, 'profile');
    const profileArgs = (name: string): string[] =>
      options.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];
    const appleEntry = (type: string) => ({
      Type: type,
      ApplePushTopic: TOPIC,
      AppleAuthKeyFile: keyFile,
      AppleAuthKeyID: authKey.keyId,
      AppleTeamID: authKey.teamId,
      AppleEndpoint: apnsUrl,
    });
    const writeProxyConfig = (variant: VariantName, port: number, name: string): string => {
      const v = VARIANTS[variant];
      const config = {
        Mode: 'eas',
        ListenAddress: `127.0.0.1:${port}`,
        EnableMetrics: true,
        // Nothing sends after the bench stops a relay: no grace to serve through.
        DrainGraceSec: 0,
        // To the console only: the process's stdout, which the bench redirects to a file.
        LogLevel: v.logLevel,
        LogFormat: v.logFormat,
        EnableConsoleLog: true,
        EnableFileLog: false,
        Workers: v.workers,
        ApplePushSettings: [appleEntry('apple_rn'), appleEntry('apple')],
        AndroidPushSettings: [{ Type: 'android_rn', ServiceFileLocation: serviceFile, FcmEndpoint: fcmUrl }],
      };
      const configFile = path.join(work, `${name}.json`);
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      return configFile;
    };

    /** RSS right after start-up, before any load */
    const restingRss = new Map<string, number>();
    /** A proxy build (ours, a --proxy-script, or the --versus one) in a variant's configuration. */
    const startProxy = async (variant: VariantName, script: string, role: 'proxy' | 'versus'): Promise<Relay> => {
      const port = await freePort();
      const name = `${role}-${variant}`;
      const configFile = writeProxyConfig(variant, port, name);
      const profiled = variant === 'default' ? profileArgs(role === 'proxy' ? 'proxy' : 'baseline') : [];
      const proc = new ProxyProcess(name, script, configFile, work, env, lifetimeSec, [...options.proxyNodeArgs, ...profiled]);
      cleanups.push(() => proc.stop());
      const label = role === 'proxy' ? VARIANTS[variant].label : `versus ${VARIANTS[variant].label.replace(/^proxy,? ?/, '')}`;
      const relay: Relay = {
        name: label,
        logLabel: role === 'proxy' ? `proxy-${variant}` : `versus-${variant}`,
        baseUrl: `http://127.0.0.1:${port}`,
        pid: () => proc.pid,
        countsSuccess: role === 'proxy',
        logFile: proc.logFile,
        // Only our own proxy is held to one line per notification (another script or build may log otherwise).
        deliveryLinesEach: role === 'proxy' && !options.proxyScript ? (VARIANTS[variant].logLevel === 'info' ? 1 : 0) : undefined,
        stop: () => proc.stop(),
      };
      await proc.waitReady(relay.baseUrl);
      restingRss.set(relay.name, treeRssMb(proc.pid));
      return relay;
    };
    /** The bare relay in `count` processes (node:cluster, one port, as the proxy's Workers). */
    const startBare = async (count: number): Promise<Relay> => {
      const name = count === 1 ? 'baseline' : `baseline-${count}`;
      const proc = new ForkedProcess(
        name,
        path.join(__dirname, 'baseline.js'),
        { ...baselineSettings, workers: count },
        work,
        env,
        count === 1 ? profileArgs('baseline') : [],
      );
      cleanups.push(() => proc.stop());
      const relay: Relay = {
        name: relayLabel({ bare: count }),
        logLabel: count === 1 ? 'baseline' : `bare-${count}`,
        baseUrl: `http://127.0.0.1:${await proc.port}`,
        pid: () => proc.pid,
        countsSuccess: false,
        stop: () => proc.stop(),
      };
      restingRss.set(relay.name, treeRssMb(proc.pid));
      return relay;
    };

    // Relays are started when a scenario first needs them and stopped after the last one that does.
    const relays = new Map<string, Relay>();
    /** A scenario's A side: the bare relay, or with --versus the other build in the B side's configuration. */
    const baseSpec = (s: Scenario): { key: string; start: () => Promise<Relay> } => {
      if (options.versusScript && 'proxy' in s.subject) {
        const variant = s.subject.proxy;
        return { key: `versus:${variant}`, start: () => startProxy(variant, options.versusScript!, 'versus') };
      }
      return { key: `bare:${s.base.bare}`, start: () => startBare(s.base.bare) };
    };
    const subjectSpec = (spec: RelaySpec): { key: string; start: () => Promise<Relay> } =>
      'proxy' in spec
        ? { key: `proxy:${spec.proxy}`, start: () => startProxy(spec.proxy, options.proxyScript ?? cliPath, 'proxy') }
        : { key: `bare:${spec.bare}`, start: () => startBare(spec.bare) };
    const relayFor = async (spec: { key: string; start: () => Promise<Relay> }): Promise<Relay> => {
      let relay = relays.get(spec.key);
      if (!relay) {
        relay = await spec.start();
        relays.set(spec.key, relay);
      }
      return relay;
    };
    const stopUnneeded = async (remaining: Scenario[]): Promise<void> => {
      const needed = new Set(remaining.flatMap((s) => [baseSpec(s).key, subjectSpec(s.subject).key]));
      for (const [key, relay] of [...relays]) {
        if (needed.has(key)) continue;
        relays.delete(key);
        await relay.stop();
        // Its log served its runs: the disk is for the next relay's.
        if (relay.logFile && !options.keep && results.every((r) => r.problems.length === 0)) rmSync(relay.logFile, { force: true });
      }
    };

    let order = 0;
    let runCounter = 0;
    const results: RunResult[] = [];
    const totalRuns = runsPlanned;
    /** notifications each relay moved, warm-ups included (for the profiles' per-1,000 figures) */
    const relayed = new Map<string, number>();

    const measure = async (
      relay: Relay,
      kind: 'baseline' | 'proxy',
      scenario: Scenario,
      durationSec: number,
      record: boolean,
      round = 0,
    ): Promise<RunResult> => {
      const run = `r${++runCounter}`;
      const { targets, apnsRun, fcmRun } = loadTargets(scenario, run);
      const peers = [...(apnsRun ? [apnsPeer] : []), ...(fcmRun ? [fcmPeer] : [])];
      const waitedSec = record ? await waitForQuiet(options.quietWaitSec * 1000, options.quick ? 200 : 500) : 0;
      if (apnsRun) await apnsPeer.reset(apnsRun, scenario.latencyMs);
      if (fcmRun) await fcmPeer.reset(fcmRun, scenario.latencyMs);
      // Each run's log starts empty (the file is opened for appending, so the proxy's writes follow the cut).
      if (relay.logFile && existsSync(relay.logFile)) truncateSync(relay.logFile, 0);
      const successBefore = relay.countsSuccess ? await scrapeSuccess(relay.baseUrl) : undefined;
      const pid = relay.pid();
      const peaksReset = resetPeaks(pid);
      const machine0 = machineTicks();
      const accounts0 = cpuAccounts();
      const cpu0 = treeCpuSeconds(pid);
      const peerCpu = (): number => peers.reduce((sum, p) => sum + treeCpuSeconds(p.pid), 0);
      const peerCpu0 = peerCpu();
      const load = await runLoad(driver, {
        baseUrl: relay.baseUrl,
        connections: scenario.connections,
        durationSec,
        targets,
        run,
        workDir: work,
      });
      const stats = await settle(peers, load);
      relayed.set(relay.name, (relayed.get(relay.name) ?? 0) + stats.unique);
      const cpu1 = treeCpuSeconds(pid);
      const peerCpuSec = peerCpu() - peerCpu0;
      const accounts1 = cpuAccounts();
      const machine1 = machineTicks();
      const foreignCpuSec = Math.max(0, accounts1.machineSec - accounts0.machineSec - (accounts1.ownSec - accounts0.ownSec));
      const noisy = foreignCpuSec > NOISE_LIMIT * load.durationSec;
      const rssMb = treePeakRssMb(pid);
      let proxySuccess: number | undefined;
      if (successBefore !== undefined) {
        // The proxy counts a success once the peer's answer is in: give the last ones a moment.
        const deadline = Date.now() + 3000;
        do {
          proxySuccess = (await scrapeSuccess(relay.baseUrl)) - successBefore;
          if (proxySuccess === stats.unique) break;
          await new Promise((r) => setTimeout(r, 100));
        } while (Date.now() < deadline);
      }
      const expectedLines = relay.deliveryLinesEach === undefined ? undefined : relay.deliveryLinesEach * stats.unique;
      const logged = relay.logFile ? await readDeliveryLog(relay.logFile, run, expectedLines ?? 0) : undefined;

      const problems: string[] = [];
      const inFlightAtStop = load.sent - load.answered;
      if (load.notOk > 0) problems.push(`${load.notOk} answers not {"status":"OK"} (first: ${load.sample ?? '?'})`);
      const socketErrors = load.errors.connect + load.errors.read + load.errors.write + load.errors.timeout;
      if (socketErrors > 0) problems.push(`driver errors ${JSON.stringify(load.errors)}`);
      if (stats.duplicates > 0) problems.push(`${stats.duplicates} notifications reached the peer more than once`);
      if (stats.foreign > 0) problems.push(`${stats.foreign} notifications without this run's ack_id (or at the wrong peer)`);
      if (stats.rejected > 0) problems.push(`${stats.rejected} requests refused by the peer`);
      if (stats.unique < load.ok) problems.push(`${load.ok - stats.unique} OK answers for notifications the peer never received`);
      if (stats.unique > load.ok + inFlightAtStop)
        problems.push(
          `the peer received ${stats.unique - load.ok} more than were answered OK (only ${inFlightAtStop} were in flight at the end)`,
        );
      if (proxySuccess !== undefined && proxySuccess !== stats.unique)
        problems.push(`proxy counted ${proxySuccess} successes, the peer ${stats.unique}`);
      if (expectedLines !== undefined && logged && logged.lines !== expectedLines)
        problems.push(
          `the proxy logged ${logged.lines} "${DELIVERY_LINE}" lines for ${stats.unique} notifications (expected ${expectedLines})`,
        );
      if (!peaksReset) problems.push('peak RSS could not be reset (VmHWM since start)');
      if (load.ok === 0) problems.push('no request answered OK');

      const result: RunResult = {
        scenario: scenario.id,
        relay: relay.name,
        kind,
        order: record ? ++order : 0,
        round,
        load,
        peer: stats,
        cpuSec: cpu1 - cpu0,
        peerCpuSec,
        harnessCpuSec: Math.max(0, accounts1.ownSec - accounts0.ownSec - (cpu1 - cpu0) - peerCpuSec),
        notifications: stats.unique,
        rssMb,
        logBytes: logged?.bytes,
        deliveryLines: logged?.lines,
        deliveryLinesExpected: expectedLines,
        machineBusy: (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total),
        foreignCpuSec,
        waitedSec,
        noisy,
        proxySuccess,
        problems,
      };
      if (record) {
        results.push(result);
        const per1k = (sec: number): string => fmt((sec / Math.max(1, result.notifications)) * 1000, 3);
        const logText = logged
          ? `  log ${fmt(logged.bytes / Math.max(1, stats.unique), 0)} B/notification (${logged.lines} delivery lines)`
          : '';
        log(
          `[${String(result.order).padStart(2)}/${totalRuns}] ${scenario.id.padEnd(18)} ${relay.logLabel.padEnd(15)} ` +
            `${fmt(load.ok / load.durationSec, 0).padStart(6)} req/s  p50 ${fmt(load.p50Ms, 2)} ms  p99 ${fmt(load.p99Ms, 2)} ms  ` +
            `cpu ${per1k(result.cpuSec)} s/1k (peer ${per1k(peerCpuSec)}, driver and bench ${per1k(result.harnessCpuSec)})  rss ${fmt(rssMb, 0)} MB${logText}  ` +
            `machine ${fmt(result.machineBusy * 100, 0)}%${noisy ? ` NOISY (others ${fmt(foreignCpuSec / load.durationSec, 2)} core)` : ''}${waitedSec >= 2 ? ` (waited ${fmt(waitedSec, 0)} s for quiet)` : ''}  ${problems.length === 0 ? 'exactly once ✓' : `PROBLEM: ${problems.join('; ')}`}`,
        );
      } else if (problems.length > 0) {
        log(`warm-up ${scenario.id} ${relay.logLabel}: ${problems.join('; ')}`);
      }
      return result;
    };

    const warmedUp = new Set<string>();
    const warmUp = async (relay: Relay, scenario: Scenario): Promise<void> => {
      const key = `${relay.name}/${scenario.target}`;
      if (warmedUp.has(key)) return;
      warmedUp.add(key);
      await measure(relay, 'proxy', scenario, options.warmupSec, false);
    };

    for (const [index, scenario] of scenarios.entries()) {
      const base = await relayFor(baseSpec(scenario));
      const subject = await relayFor(subjectSpec(scenario.subject));
      await warmUp(base, scenario);
      await warmUp(subject, scenario);
      const runRound = async (round: number): Promise<void> => {
        // A B B A: yardstick, subject, subject, yardstick.
        for (const [relay, kind] of [
          [base, 'baseline'],
          [subject, 'proxy'],
          [subject, 'proxy'],
          [base, 'baseline'],
        ] as const)
          await measure(relay, kind, scenario, options.durationSec, true, round);
      };
      const planned = roundsOf(scenario, options.rounds);
      for (let round = 0; round < planned; round++) await runRound(round);
      // Rounds a slowdown of the host hit on one side are measured again (bench/host-steadiness.ts), a few at most.
      const samples = (): SteadinessSample[] => steadinessSamples(results.filter((r) => r.scenario === scenario.id));
      let rounds = planned;
      while (!options.quick && rounds - planned < MAX_REPEATED_ROUNDS && rounds - unbalancedRounds(samples()).length < planned) {
        log(
          `${scenario.id}: a slowdown of the host hit one side of round(s) ${unbalancedRounds(samples())
            .map((r) => r + 1)
            .join(', ')}: one more round`,
        );
        await runRound(rounds++);
      }
      const aside = new Set(roundsToSetAside(samples()));
      for (const r of results) if (r.scenario === scenario.id && aside.has(r.round)) r.setAside = true;
      // Profiles are written when the processes exit: the last scenario stops them all.
      await stopUnneeded(scenarios.slice(index + 1));
    }

    let profileText = '';
    if (options.profile) {
      const parts: string[] = [
        'Profiles (--profile: the sampling profiler slows both relays; take the table above from a run without it):',
      ];
      const profiledNames = new Map([
        ['proxy', VARIANTS.default.label],
        ['baseline', options.versusScript ? `versus ${VARIANTS.default.label.replace(/^proxy,? ?/, '')}` : relayLabel({ bare: 1 })],
      ]);
      for (const [name, relayName] of profiledNames) {
        const dir = path.join(profileDir, name);
        const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
        if (files.length === 0) {
          parts.push(`(no profile was written for the ${name})`);
          continue;
        }
        parts.push(summarizeProfile(path.join(dir, files[0]!), root, { title: `the ${name}`, notifications: relayed.get(relayName) }));
        if (options.keep) log(`bench: ${name} profile kept at ${path.join(dir, files[0]!)}`);
      }
      profileText = parts.join('\n\n');
    }

    const report = renderReport({ options, driver, startedAt, results, scenarios, restingRss });
    process.stdout.write(report + (profileText ? `\n${profileText}\n` : ''));
    if (options.out) writeFileSync(options.out, report + (profileText ? `\n${profileText}\n` : ''));
    if (options.json)
      writeFileSync(
        options.json,
        JSON.stringify(
          {
            startedAt,
            machine: machineInfo(),
            driver,
            options: { ...options, only: options.only ? [...options.only] : undefined },
            results,
          },
          null,
          2,
        ),
      );
    const failed = results.filter((r) => r.problems.length > 0);
    if (failed.length > 0) log(`bench: ${failed.length} of ${results.length} runs had problems (see above)`);
    succeeded = failed.length === 0;
    return failed.length > 0 ? 1 : 0;
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

// ---------------------------------------------------------------- report

/** What bench/host-steadiness.ts reads of runs: each run's round, side and the peer's CPU per 1,000 notifications. */
function steadinessSamples(runs: readonly RunResult[]): SteadinessSample[] {
  return runs.map((r) => ({ round: r.round, kind: r.kind, peerCpuPer1k: (r.peerCpuSec / Math.max(1, r.notifications)) * 1000 }));
}

function summarize(runs: RunResult[]): Side | undefined {
  if (runs.length === 0) return undefined;
  const sum = (f: (r: RunResult) => number): number => runs.reduce((a, r) => a + f(r), 0);
  return {
    rps: sum((r) => r.load.ok) / sum((r) => r.load.durationSec),
    p50: sum((r) => r.load.p50Ms) / runs.length,
    p99: sum((r) => r.load.p99Ms) / runs.length,
    cpuPer1k:
      (sum((r) => r.cpuSec) /
        Math.max(
          1,
          sum((r) => r.notifications),
        )) *
      1000,
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    runs: runs.length,
    noisy: runs.filter((r) => r.noisy).length,
    ok: runs.every((r) => r.problems.length === 0),
  };
}

/** Bytes the relay logged per notification over these runs ('–' for a relay without a log file). */
function logBytesPerNotification(runs: RunResult[]): string {
  const logged = runs.filter((r) => r.logBytes !== undefined);
  if (logged.length === 0) return '–';
  const bytes = logged.reduce((a, r) => a + r.logBytes!, 0);
  return fmt(
    bytes /
      Math.max(
        1,
        logged.reduce((a, r) => a + r.notifications, 0),
      ),
    0,
  );
}

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  };
}

/** Relative to the working directory when inside it, else absolute. */
function shortPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

function renderReport(input: {
  options: Options;
  driver: DriverName;
  startedAt: Date;
  results: RunResult[];
  scenarios: Scenario[];
  restingRss: Map<string, number>;
}): string {
  const { options, driver, startedAt, results, scenarios, restingRss } = input;
  const m = machineInfo();
  const lines: string[] = [];
  lines.push(
    `Push Proxy bench, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC${options.quick ? ' (--quick: indicative only)' : ''}`,
  );
  lines.push(
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}; driver ${driver === 'wrk' ? 'wrk (1 thread)' : 'autocannon (in the bench process)'}; ${options.durationSec} s per run, A B B A × ${options.rounds} per scenario (extras ${Math.max(1, Math.ceil(options.rounds / 2))}).`,
  );
  const proxyCommand = [
    'node',
    ...options.proxyNodeArgs,
    options.proxyScript ? path.relative(process.cwd(), options.proxyScript) : 'dist/src/cli.js',
  ].join(' ');
  const versus = options.versusScript ? shortPath(options.versusScript) : undefined;
  lines.push(
    `Proxy: ${proxyCommand}, eas mode, metrics on, logging as its row says, always to the console (stdout redirected to a file, as a service manager captures it); ` +
      `${versus ? `versus: node ${[...options.proxyNodeArgs, versus].join(' ')} in the same configuration as the proxy of each row (--versus)` : 'baseline: bench/baseline.ts'}. CPU and RSS: the relay's whole process tree.`,
  );
  lines.push(`RSS at rest (after start-up, before load): ${[...restingRss].map(([name, mb]) => `${name} ${fmt(mb, 0)} MB`).join(', ')}.`);
  lines.push('');
  lines.push('| scenario | relay | req/s | p50 ms | p99 ms | CPU s / 1k | peak RSS MB | log B / notification | runs | exactly once |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  const comparisons = new Map<string, Comparison>();
  for (const scenario of scenarios) {
    // Runs of rounds a slowdown of the host hit on one side are reported as set aside, not counted (bench/host-steadiness.ts).
    const baseRuns = results.filter((r) => r.scenario === scenario.id && r.kind === 'baseline' && !r.setAside);
    const subjectRuns = results.filter((r) => r.scenario === scenario.id && r.kind === 'proxy' && !r.setAside);
    const asideOf = (kind: RunResult['kind']): number =>
      results.filter((r) => r.scenario === scenario.id && r.kind === kind && r.setAside).length;
    const baseSide = summarize(baseRuns);
    const proxy = summarize(subjectRuns);
    if (!baseSide || !proxy) continue;
    comparisons.set(scenario.id, { base: baseSide, proxy });
    const row = (label: string, relay: string, s: Side, runs: RunResult[], aside: number): string =>
      `| ${label} | ${relay} | ${fmt(s.rps, 0)} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(s.cpuPer1k, 3)} | ${fmt(s.rssMb, 0)} | ${logBytesPerNotification(runs)} | ${s.runs}${s.noisy ? ` (${s.noisy} noisy)` : ''}${aside ? ` (+${aside} set aside)` : ''} | ${s.ok ? 'yes' : '**NO**'} |`;
    lines.push(row(`${scenario.label} (${scenario.id})`, baseRuns[0]!.relay, baseSide, baseRuns, asideOf('baseline')));
    lines.push(row('', subjectRuns[0]!.relay, proxy, subjectRuns, asideOf('proxy')));
    const ratioName = 'bare' in scenario.subject ? `${scenario.subject.bare} processes ÷ 1` : `proxy ÷ ${versus ? 'versus' : 'baseline'}`;
    lines.push(
      `| | **${ratioName}** | **${fmt(proxy.rps / baseSide.rps, 2)}** | ${fmt(proxy.p50 / baseSide.p50, 2)} | **${fmt(proxy.p99 / baseSide.p99, 2)}** | **${fmt(proxy.cpuPer1k / baseSide.cpuPer1k, 2)}** | ${fmt(proxy.rssMb / baseSide.rssMb, 2)} | | | |`,
    );
  }
  lines.push('');
  const failed = results.filter((r) => r.problems.length > 0).length;
  const noisy = results.filter((r) => r.noisy).length;
  const setAside = results.filter((r) => r.setAside);
  const logChecked = results.filter((r) => r.deliveryLinesExpected !== undefined).length;
  const checks = (): void => {
    lines.push('');
    if (noisy > 0)
      lines.push(
        `Noise: in ${noisy} of ${results.length} runs other processes on the machine used more than ${NOISE_LIMIT} of a core; their numbers are less reliable.`,
      );
    // A scenario measured again that keeps every round: the report says why (none off the median any more, or too few steady).
    for (const s of scenarios) {
      const runs = results.filter((r) => r.scenario === s.id);
      if (runs.some((r) => r.setAside) || !runs.some((r) => r.round >= roundsOf(s, options.rounds))) continue;
      const off = unbalancedRounds(steadinessSamples(runs));
      lines.push(
        `Host: ${s.id} was measured again after a round looked hit on one side only; every round counts (the runs column includes the extra ones): ` +
          (off.length === 0
            ? 'with the extra rounds none is off the median any more.'
            : `${off.length} round(s) are still off, too many to set aside: the host was unsteady throughout this scenario.`),
      );
    }
    if (setAside.length > 0)
      lines.push(
        `Host: ${setAside.length / 4} round(s) set aside (${[...new Set(setAside.map((r) => r.scenario))].join(', ')}): in each, a slowdown of the host ` +
          `hit one side's runs more than the other's (the peer's CPU per notification on the B runs over that on the A runs was more than ` +
          `${BALANCE_TOLERANCE}× off its median in the scenario), and it was measured again (at most ${MAX_REPEATED_ROUNDS} rounds per scenario). ` +
          `Every run, set aside or not, is in --json.`,
      );
    lines.push(
      failed === 0
        ? `Checks: all ${results.length} runs answered every request {"status":"OK"}, and the peers received each notification exactly once` +
            (logChecked > 0
              ? `; in the proxy's ${logChecked} runs its log held one "${DELIVERY_LINE}" line per notification at info, none at warn.`
              : '.')
        : `Checks: ${failed} of ${results.length} runs had problems (see the log above).`,
    );
  };
  if (versus) {
    lines.push('Targets: not judged (--versus compares two builds of the proxy, not the proxy with the bare relay).');
    checks();
    return lines.join('\n');
  }
  // Peak RSS is judged on the default-logging proxy (one process) in the APNs scenarios.
  const defaultRss = results
    .filter((r) => r.kind === 'proxy' && DEFAULT_LOGGING_APNS.includes(r.scenario))
    .filter((r) => scenarios.some((s) => s.id === r.scenario && 'proxy' in s.subject && s.subject.proxy === 'default'))
    .map((r) => r.rssMb);
  const verdicts = judgeTargets(comparisons, defaultRss.length > 0 ? Math.max(...defaultRss) : undefined);
  lines.push('Targets (ratios to the yardstick of the same scenario, in this run; the scenarios this run measured):');
  lines.push('');
  lines.push(...renderVerdicts(verdicts));
  const bare2 = comparisons.get('bare2-c256-0ms');
  if (bare2) {
    lines.push(
      '',
      `The bare relay itself in 2 processes (bare2-c256-0ms), on the same cores as the peer and the driver: ${fmt(bare2.proxy.rps / bare2.base.rps, 2)}× the throughput of its single loop, ` +
        `at ${fmt(bare2.proxy.cpuPer1k / bare2.base.cpuPer1k, 2)}× its CPU per 1,000: the ceiling 2 processes reach on this machine, the Workers 2 target's yardstick.`,
    );
  }
  checks();
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    killAllStarted();
    process.exit(1);
  },
);
