/** `push-proxy tenants …`: finds the tenants file, then hands over to src/tenants/command.ts. */
import { ConfigError } from '../config/errors';
import { findConfigFile, loadConfigFile } from '../config/load';
import { runTenantsCommand, TENANTS_USAGE } from '../tenants/command';

export async function runTenants(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<string> {
  const rest: string[] = [];
  const configArgs: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--tenants-file') file = argv[++i];
    else if (arg.startsWith('--tenants-file=')) file = arg.slice('--tenants-file='.length);
    else if (arg === '--config' || arg === '-config') configArgs.push(arg, argv[++i] ?? '');
    else if (arg.startsWith('--config=') || arg.startsWith('-config=')) configArgs.push(arg);
    else rest.push(arg);
  }
  if (rest.length === 0 || rest.includes('--help') || rest.includes('-h')) return TENANTS_USAGE;
  file ??= env.PUSH_PROXY_TENANTS_FILE || undefined;
  if (!file) {
    const configFile = findConfigFile(configArgs, env, cwd);
    if (configFile) file = loadConfigFile(configFile, env).config.TenantsFile || undefined;
  }
  if (!file) {
    throw new ConfigError(
      `no tenants file: give --tenants-file FILE, set PUSH_PROXY_TENANTS_FILE, or set TenantsFile in the config (--config FILE).\n${TENANTS_USAGE}`,
    );
  }
  return runTenantsCommand(file, rest);
}
