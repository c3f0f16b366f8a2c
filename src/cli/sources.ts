/**
 * The cluster as the observability commands read it: a GcsClient connected as `miniray status`
 * connects (resolveTarget, connectGcs), under the state API's StateSource and the logs' LogSource.
 */
import { MinirayError } from '../errors/index.js';
import type { StateSources } from './state.js';
import { connectGcs, resolveTarget } from './status.js';

export async function openSources(command: string, address: string | undefined): Promise<StateSources> {
  const target = resolveTarget(command, address);
  const connection = await connectGcs(target.address, target.token, command);
  connection.close(`${command} is done`);
  // Wired once helper state's GcsStateSource (src/state/client.ts) and helper logs' ClusterLogSource (src/state/logs.ts) are merged.
  throw new MinirayError(`${command}: this build has no state API yet`);
}
