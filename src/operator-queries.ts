/**
 * Questions the operator's API asks of what each process keeps in its own memory (the trace of recent
 * notifications, usage counted in memory). With Workers, a request reaches one worker, but every worker holds
 * part of the answer: `ask` puts the question to every worker, this one included, through the primary
 * (src/workers.ts), and resolves with their answers for the caller to merge. In one process it asks only itself.
 */

/** Answers one named question from what this process holds; `params` and the answer travel as JSON between processes. */
export type QueryHandler = (params: unknown) => unknown;

export interface OperatorQueries {
  /** Registers this process's answer to `name` (one handler per name; a later one replaces it). */
  answer(name: string, handler: QueryHandler): void;
  /** Every process's answer to `name`, in no particular order; a process without a handler for it gives none. */
  ask(name: string, params: unknown): Promise<unknown[]>;
}

/** The handlers of one process, which answer both its own questions and the primary's on behalf of other workers. */
export class QueryHandlers {
  private readonly handlers = new Map<string, QueryHandler>();

  set(name: string, handler: QueryHandler): void {
    this.handlers.set(name, handler);
  }

  /** This process's answer, or undefined when it has no handler for `name`. */
  async run(name: string, params: unknown): Promise<{ answered: boolean; value?: unknown }> {
    const handler = this.handlers.get(name);
    if (!handler) return { answered: false };
    return { answered: true, value: await handler(params) };
  }
}

/** A single process: the only answers are its own. */
export function localQueries(): OperatorQueries {
  const handlers = new QueryHandlers();
  return {
    answer: (name, handler) => handlers.set(name, handler),
    ask: async (name, params) => {
      const own = await handlers.run(name, params);
      return own.answered ? [own.value] : [];
    },
  };
}
