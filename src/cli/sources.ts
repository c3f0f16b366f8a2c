/**
 * The cluster as the observability commands read it: a GcsClient connected as `miniray status`
 * connects (resolveTarget, connectGcs), under the state API's GcsStateSource and the logs'
 * ClusterLogSource.
 */
import { observabilitySources } from '../state/sources.js';
import type { StateSources } from './state.js';
import { connectGcs, resolveTarget } from './status.js';

export async function openSources(command: string, address: string | undefined): Promise<StateSources> {
  const target = resolveTarget(command, address);
  const connection = await connectGcs(target.address, target.token, command);
  const { state, logs } = observabilitySources(connection.gcs);
  return { state, logs, close: () => connection.close(`${command} is done`) };
}
