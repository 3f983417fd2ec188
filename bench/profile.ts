/**
 * Where a process's CPU went, from a V8 `.cpuprofile` (node --cpu-prof): time per package or part of the
 * project, and the hottest functions. Native frames (JSON.stringify, crypto, TLS, nghttp2 bindings) are
 * charged to the nearest JavaScript caller, so each row says which code caused the cost.
 *
 * `node dist/bench/profile.js FILE.cpuprofile [NOTIFICATIONS]` prints the same summary for any profile.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Which part of the code a frame belongs to: an npm package, a folder of the project, Node itself. */
export function categoryOf(frame: CallFrame, projectRoot: string): string | undefined {
  if (SPECIAL.has(frame.functionName) && frame.url === '') return frame.functionName;
  const url = frame.url;
  if (url === '') return undefined;
  // node:internal/http2/core → node:internal/http2, node:_http_server stays as it is
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const file = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const modules = file.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const parts = file.slice(modules + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const relative = path.relative(projectRoot, file);
  if (!relative.startsWith('..')) {
    const parts = relative.split(path.sep);
    // dist/src/http/app.js → src/http
    if (parts[0] === 'dist') parts.shift();
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return 'other';
}

export interface SummaryOptions {
  /** what the profile is of, for the heading */
  title?: string;
  /** notifications the process relayed while profiled: adds a CPU ms per 1,000 column */
  notifications?: number;
  top?: number;
}

export function summarizeProfile(file: string, projectRoot: string, summary: SummaryOptions = {}): string {
  const top = summary.top ?? 20;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }

  // Each node's own category, or (for native frames) the nearest categorized ancestor's.
  const charged = new Map<number, string>();
  const chargeOf = (id: number): string => {
    const known = charged.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    const own = categoryOf(node.callFrame, projectRoot);
    const parentId = parent.get(id);
    const result = own ?? (parentId === undefined ? '(native)' : chargeOf(parentId));
    charged.set(id, result);
    return result;
  };

  // The library or project code nearest the top of the stack: who caused the work done in Node's core.
  const owners = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owners.get(id);
    if (known !== undefined) return known;
    const c = categoryOf(byId.get(id)!.callFrame, projectRoot);
    const parentId = parent.get(id);
    const result =
      c === '(root)'
        ? 'Node core only (no library on the stack)'
        : c !== undefined && SPECIAL.has(c)
          ? c
          : c !== undefined && !c.startsWith('node:')
            ? c
            : parentId === undefined
              ? 'Node core only (no library on the stack)'
              : ownerOf(parentId);
    owners.set(id, result);
    return result;
  };
  const byOwner = new Map<string, number>();

  const selfByCategory = new Map<string, number>();
  const inclusiveByCategory = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const delta = profile.timeDeltas[i] ?? 0;
    total += delta;
    const node = byId.get(id);
    if (!node) continue;
    const category = chargeOf(id);
    const owner = ownerOf(id);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + delta);
    selfByCategory.set(category, (selfByCategory.get(category) ?? 0) + delta);
    if (category !== '(idle)') busy += delta;
    const frame = node.callFrame;
    const where = frame.url
      ? `${categoryOf(frame, projectRoot) ?? ''} ${path.basename(frame.url)}:${frame.lineNumber + 1}`
      : `native, called from ${category}`;
    const name = `${frame.functionName || '(anonymous)'} (${where})`;
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + delta);
    // Inclusive: every category on the stack, once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const c = categoryOf(byId.get(at)!.callFrame, projectRoot);
      if (c !== undefined && !SPECIAL.has(c)) seen.add(c);
    }
    for (const c of seen) inclusiveByCategory.set(c, (inclusiveByCategory.get(c) ?? 0) + delta);
  }

  const pct = (us: number): string => `${((us / Math.max(1, busy)) * 100).toFixed(1)}%`;
  const n = summary.notifications;
  const per1k = (us: number): string => (n ? ` ${((us / 1000 / n) * 1000).toFixed(1)} |` : '');
  const perHead = n ? ' ms per 1k |' : '';
  const perRule = n ? '---:|' : '';
  const lines: string[] = [];
  lines.push(
    `CPU profile of ${summary.title ?? 'the process'} (${path.basename(file)}): ${(busy / 1e6).toFixed(2)} s busy of ${(total / 1e6).toFixed(1)} s sampled` +
      (n ? `, ${n} notifications relayed (start-up and warm-up included): ${((busy / 1000 / n) * 1000).toFixed(0)} ms per 1,000.` : '.'),
  );
  lines.push('');
  lines.push(`| code | self, native calls charged to their caller |${perHead} inclusive (on the stack) |`);
  lines.push(`|---|---:|${perRule}---:|`);
  const categories = [...selfByCategory.entries()].filter(([c]) => c !== '(idle)').sort((a, b) => b[1] - a[1]);
  for (const [category, self] of categories.slice(0, top)) {
    lines.push(
      `| ${category} | ${pct(self)} |${per1k(self)} ${SPECIAL.has(category) ? '' : pct(inclusiveByCategory.get(category) ?? 0)} |`,
    );
  }
  lines.push('');
  lines.push(`| who caused it (nearest library or project code on the stack; Node core charged to it) | share |${perHead}`);
  lines.push(`|---|---:|${perRule}`);
  const ownerRows = [...byOwner.entries()].filter(([c]) => c !== '(idle)').sort((a, b) => b[1] - a[1]);
  for (const [owner, us] of ownerRows.slice(0, top)) lines.push(`| ${owner} | ${pct(us)} |${per1k(us)}`);
  lines.push('');
  lines.push(`| hottest functions (self time) | share |${perHead}`);
  lines.push(`|---|---:|${perRule}`);
  const functions = [...selfByFunction.entries()].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
  for (const [name, self] of functions.slice(0, top)) lines.push(`| ${name.replace(/\|/g, '\\|')} | ${pct(self)} |${per1k(self)}`);
  return lines.join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile.js FILE.cpuprofile [NOTIFICATIONS]\n');
    process.exit(2);
  }
  const notifications = process.argv[3] ? Number(process.argv[3]) : undefined;
  process.stdout.write(summarizeProfile(file, path.resolve(__dirname, '..', '..'), { notifications }) + '\n');
}
