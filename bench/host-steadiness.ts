/**
 * Which A B B A rounds a slowdown of the host hit on one side only. A B B A cancels a slow drift, but the development
 * machine is a virtual machine whose host slows it by half for ten or twenty seconds at a time: a phase that covers
 * the two B runs of a round and neither A run reads as the relay costing half as much again (or, on the A runs,
 * as costing less). The peer tells: it does the same work for a notification whichever relay sends it, so its CPU
 * per notification measures the machine's speed in each run (docs/performance.md, Method). In a round the host hit
 * evenly, the peer's cost on the B runs over its cost on the A runs is what it is in the scenario's other rounds
 * (about 1 for APNs; for FCM the proxy's fuller requests cost the peer a little more); a round where that balance
 * is off by more than a fifth either way is measured again and set aside, whichever side the slowdown favoured.
 * Pure: bench/run.ts feeds it the runs.
 */

/** What the check reads of one run. */
export interface SteadinessSample {
  round: number;
  kind: 'baseline' | 'proxy';
  /** the peer's CPU seconds per 1,000 notifications in this run */
  peerCpuPer1k: number;
}

/**
 * A round whose peer balance (B over A) is more than this factor off the scenario's median balance, up or down, had
 * its two sides on a differently loaded machine. Steady rounds stay within about 5 % of each other.
 */
export const BALANCE_TOLERANCE = 1.2;

/** At most this many rounds of a scenario are measured again. */
export const MAX_REPEATED_ROUNDS = 2;

/** Each round's peer balance: its mean CPU per notification on the B (proxy) runs over that on the A (baseline) runs. */
export function peerBalances(samples: readonly SteadinessSample[]): Map<number, number> {
  const sides = new Map<number, { a: number[]; b: number[] }>();
  for (const s of samples) {
    const round = sides.get(s.round) ?? { a: [], b: [] };
    (s.kind === 'baseline' ? round.a : round.b).push(s.peerCpuPer1k);
    sides.set(s.round, round);
  }
  const mean = (xs: number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length;
  const balances = new Map<number, number>();
  for (const [round, { a, b }] of sides) if (a.length > 0 && b.length > 0 && mean(a) > 0) balances.set(round, mean(b) / mean(a));
  return balances;
}

/** The rounds (ascending) whose peer balance is off the scenario's median by more than `tolerance`, either way. */
export function unbalancedRounds(samples: readonly SteadinessSample[], tolerance = BALANCE_TOLERANCE): number[] {
  const balances = peerBalances(samples);
  const sorted = [...balances.values()].sort((x, y) => x - y);
  if (sorted.length < 2) return [];
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return [...balances]
    .filter(([, balance]) => balance > median * tolerance || balance < median / tolerance)
    .map(([round]) => round)
    .sort((x, y) => x - y);
}

/**
 * The rounds to leave out of a scenario's figures: the unbalanced ones, as long as at least half of its rounds
 * remain (otherwise none: the host was unsteady throughout, and every round counts).
 */
export function roundsToSetAside(samples: readonly SteadinessSample[], tolerance = BALANCE_TOLERANCE): number[] {
  const rounds = peerBalances(samples).size;
  const off = unbalancedRounds(samples, tolerance);
  return rounds - off.length >= Math.ceil(rounds / 2) ? off : [];
}
