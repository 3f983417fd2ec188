/** A problem the operator must fix before the proxy can start; the CLI prints it and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
