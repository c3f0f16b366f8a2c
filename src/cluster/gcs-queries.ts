/**
 * What a node's CoreWorkers ask of the GCS through the node (ClusterLink.info): the node table,
 * the resource totals, and the state API's reads, passed on only if they are reads.
 */
import { MinirayError } from '../errors/index.js';
import type { GcsClient } from '../gcs/index.js';
import { PLACEMENT_GROUP_GCS_METHODS, STATE_GCS_METHODS, type ClusterAnswer, type ClusterQuery, type GcsQuery } from '../protocol/index.js';
import { encodeError } from '../serialization/index.js';
import { withoutEnvVars } from '../state/client.js';
import { JOB_SUBMISSIONS } from '../state/types.js';

export function answerClusterQuery(gcs: GcsClient, query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
  const asked =
    typeof query === 'object'
      ? stateQuery(gcs, query).then((answer): ClusterAnswer => ({ gcs: answer }))
      : query === 'nodes'
      ? gcs.getNodes().then((nodes): ClusterAnswer => ({ nodes: nodes.map(({ nodeId, alive, address, resources, isDriver }) => ({ nodeId, alive, address, resources, isDriver })) }))
      : (query === 'clusterResources' ? gcs.clusterResources() : gcs.availableResources()).then((resources): ClusterAnswer => ({ resources }));
  asked.then(callback, (error: unknown) => callback({ error: encodeError(error instanceof Error ? error : new Error(String(error))) }));
}

/**
 * A read of the GCS for the state API of a CoreWorker here (a task's `state.list*`): passed on
 * as it is, and its answer back as it came (the CoreWorker's GcsClient checks it). Of the KV,
 * only the Jobs API's records are read this way.
 */
function stateQuery(gcs: GcsClient, query: GcsQuery): Promise<unknown> {
  // The worker channel's validator allows only these; checked here too, as every door of the node should.
  if (!(STATE_GCS_METHODS as readonly string[]).includes(query.gcs) && !(PLACEMENT_GROUP_GCS_METHODS as readonly string[]).includes(query.gcs)) {
    return Promise.reject(new MinirayError(`the state API does not call the GCS's '${query.gcs}': it only reads (${STATE_GCS_METHODS.join(', ')})`));
  }
  if ((query.gcs === 'kvGet' || query.gcs === 'kvKeys') && (query.body as { namespace?: unknown } | null)?.namespace !== JOB_SUBMISSIONS) {
    return Promise.reject(new MinirayError(`the state API reads only the '${JOB_SUBMISSIONS}' namespace of the GCS's KV`));
  }
  const asked = gcs.peer.request(query.gcs, query.body, query.timeoutMs === undefined ? {} : { timeoutMs: query.timeoutMs });
  return query.gcs === 'kvGet' ? asked.then((answer) => (answer instanceof Uint8Array ? withoutEnvVars(answer) : answer)) : asked;
}
