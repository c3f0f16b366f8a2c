/**
 * The cluster as the observability commands read it: a GcsClient connected as `miniray status`
 * connects (resolveTarget, connectGcs), under the state API's GcsStateSource and the logs'
 * LogSource.
 */
import { MinirayError } from '../errors/index.js';
import { GcsStateSource } from '../state/client.js';
import type { LogSource } from '../state/types.js';
import type { StateSources } from './state.js';
import { connectGcs, resolveTarget } from './status.js';

export async function openSources(command: string, address: string | undefined): Promise<StateSources> {
  const target = resolveTarget(command, address);
  const connection = await connectGcs(target.address, target.token, command);
  // Until helper logs' ClusterLogSource (src/state/logs.ts) is merged, `miniray logs` says so.
  const logs: LogSource = {
    logs: () => Promise.reject(new MinirayError(`${command}: this build of miniray cannot read the nodes' logs yet (src/state/logs.ts is missing)`)),
  };
  return { state: new GcsStateSource(connection.gcs), logs, close: () => connection.close(`${command} is done`) };
}
