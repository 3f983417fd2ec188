/** A mistake in a command's arguments: the CLI prints the message (with the usage), no stack, exit code 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
