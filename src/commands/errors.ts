/**
 * The one error a command-line command throws for a mistake its user can fix by typing it differently: arguments
 * it does not know or that are missing, a tenant that is not there. The CLI prints the message (which carries the
 * usage where it helps) after "push-proxy: ", without a stack trace, and exits with EXIT_COMMAND_ERROR. A problem
 * in a configuration or tenants file is a ConfigError instead (src/config/errors.ts, exit code 2).
 */

/** Exit code for a CommandError: 1, as for any command that failed, so 2 stays reserved for configuration errors. */
export const EXIT_COMMAND_ERROR = 1;

/**
 * Exit code of the operator commands (`check-config`, `certs`) for whatever they find wrong, a mistyped argument
 * included: 2, as start-up's for a configuration error, so a script treats "the proxy would not start" alike.
 */
export const EXIT_CHECK_FAILED = 2;

export class CommandError extends Error {
  override readonly name = 'CommandError';

  constructor(
    message: string,
    readonly exitCode: number = EXIT_COMMAND_ERROR,
  ) {
    super(message);
  }
}
