/**
 * Assembling a node process: the Node (store, workers, local scheduling), its ClusterAgent, the
 * listener other nodes and drivers connect to, and, on the head, the GCS. The same assembly serves
 * `miniray start` (startNode), a driver that joins a cluster, and the embedded default (a GCS in
 * the same process, reached through an in-process pair of peers instead of a socket, and no
 * listener). One code path; only the transport differs.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { adoptClusterSettings, clusterSettings, defaultObjectStoreMemory, forgetClusterSettings, setting } from '../config/index.js';
import { MinirayError } from '../errors/index.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type StoreClient } from '../gcs/index.js';
import { Router, connect, listen, localPair, formatHostPort, parseHostPort, type Listener, type Peer, type PeerHello } from '../net/index.js';
import { Node, type NodeOptions } from '../node/index.js';
import { ClusterAgent } from './agent.js';
import { GcsLink } from './gcs-link.js';
import type { Health } from './healthz.js';
import type { FastifyPluginAsync } from 'fastify';

export interface StartNodeOptions {
  /** true: a GCS and a node; false: a node that joins `address`. */
  readonly head: boolean;
  /** HOST:PORT of the head's GCS (required when !head). */
  readonly address?: string;
  /** head: the GCS port (default 6380); node: its listener (default 0 = any). */
  readonly port?: number;
  /** Where to bind and what to advertise (default 127.0.0.1). */
  readonly nodeIpAddress?: string;
  /** What to advertise instead, when binding to all interfaces (0.0.0.0 in a container: the pod's IP). */
  readonly advertiseAddress?: string;
  readonly numCpus?: number;
  readonly numGpus?: number;
  readonly resources?: Record<string, number>;
  readonly token: string;
  readonly tls?: { cert: string; key: string };
  /** Bytes the object store may hold (default: 30% of memory). */
  readonly objectStoreMemory?: number;
  /** head: keep the GCS's tables in this Redis, so that a head restarted on it finds them again. */
  readonly redis?: RedisAddress;
  /** head: serve the dashboard (a node that is not the head serves none). */
  readonly dashboard?: DashboardPlace;
}

/** Where the head serves its dashboard, and what more it mounts there (src/dashboard). */
export interface DashboardPlace {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0: any free port. Taken: a warning on stderr, and the head runs without it (as Ray's). */
  readonly port: number;
  /** More routes behind the token (the Jobs API), made once the head is up. */
  readonly plugins?: (head: { readonly gcs: GcsClient; readonly gcsAddress: string; readonly token: string }) => readonly FastifyPluginAsync[];
}

/** Where the head keeps its GCS tables (--redis-address, --redis-password, --redis-namespace). */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
  readonly password?: string;
  /** Key prefix, one per cluster sharing the Redis (default 'miniray'). */
  readonly namespace?: string;
}

export interface RunningNode {
  readonly nodeId: string;
  /** head: GCS host:port; node: its own listener. */
  readonly address: string;
  readonly gcsAddress: string;
  /** What GET /healthz reports: ok while it is a member of its cluster (see healthz.ts). */
  health(): Health;
  stop(): Promise<void>;
  /** Resolves if the node ends on its own (e.g. head gone). */
  readonly stopped: Promise<void>;
  /** The head's dashboard, http://host:port without the token; undefined when not served. */
  readonly dashboardUrl?: string;
}

export const DEFAULT_HEAD_PORT = 6380;

/** A node's parts, once it is a member of its cluster. */
export interface ClusterMember {
  readonly node: Node;
  readonly agent: ClusterAgent;
  readonly gcs: GcsClient;
  /** Where other nodes reach this one (undefined in the embedded default). */
  readonly address: string | undefined;
  /** Where the GCS is (undefined in the embedded default). */
  readonly gcsAddress: string | undefined;
  /**
   * Resolves, with why, when the GCS is gone for good: a joined node's connection closed and the
   * GCS did not answer again within gcsReconnectTimeoutMs (or refused it when it did).
   */
  readonly gcsClosed: Promise<string>;
  /** Resolves, with the GCS's reason, if the GCS declares this node dead (see ClusterAgent.declaredDead). */
  readonly declaredDead: Promise<string>;
  /** Whether the connection to the GCS is up now (false while a GcsLink reconnects). */
  gcsConnected(): boolean;
  stop(): Promise<void>;
}

export interface MemberOptions {
  readonly nodeOptions: NodeOptions;
  /**
   * 'embedded': a GCS in this process and no listener (nothing can join; see startEmbedded);
   * 'head': a GCS on `port`, which serves the head's node too; 'join': a node (or driver) joining
   * `gcsAddress`.
   */
  readonly mode: 'embedded' | 'head' | 'join';
  readonly token?: string;
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly gcsAddress?: string;
  /** Where to listen and what to advertise (default 127.0.0.1). */
  readonly host?: string;
  /** What to advertise instead of `host` (which may be a wildcard such as 0.0.0.0). */
  readonly advertiseHost?: string;
  /** head: the GCS's port; join: this node's listener (0: any). */
  readonly port?: number;
  readonly isDriver?: boolean;
  /**
   * join: keep trying to reach the GCS at first, as after a lost connection (a `miniray start`
   * node may start before its head, as in Kubernetes). A driver tries once: a wrong address fails
   * at once.
   */
  readonly waitForHead?: boolean;
  /** head: the GCS's store (default: in memory, so a restarted head is a new cluster). */
  readonly redis?: RedisAddress;
}

export function splitAddress(address: string): { host: string; port: number } {
  const parsed = parseHostPort(address);
  if (parsed === undefined) {
    throw new MinirayError(`'${address}' is not a cluster address: give HOST:PORT, e.g. 127.0.0.1:${DEFAULT_HEAD_PORT} (as miniray start --head printed it)`);
  }
  return parsed;
}

/** Starts a node and makes it a member of its cluster (a head, or one joining a cluster). */
export async function startMember(options: MemberOptions): Promise<ClusterMember> {
  // Before the Node is built: it reads its settings then (see headSettings).
  if (options.mode === 'join') adoptClusterSettings(await headSettings(options));
  let parts: Parts;
  try {
    parts = assemble(options);
  } catch (error) {
    if (options.mode === 'join') forgetClusterSettings();
    throw error;
  }
  const { node, agent, publishes, routerFor, helloAs } = parts;
  let gcsServer: GcsServer | undefined;
  let store: StoreClient | undefined;
  let listener: Listener | undefined;
  let gcsPeer: Peer | GcsLink | undefined;
  try {
    if (options.mode === 'join') {
      const gcsAddress = options.gcsAddress as string;
      const link = new GcsLink({ address: gcsAddress, connect: () => parts.connectTo(gcsAddress, true), timeoutMs: setting('gcsReconnectTimeoutMs') });
      gcsPeer = link;
      agent.adopt(await link.open(options.waitForHead ?? false)); // the head's node is reached over the same connection
      link.onDisconnect = (hello) => agent.nodeUnreachable(hello.nodeId);
      link.onReconnect = async (peer) => {
        // A restarted head is a new node on the same port: its connection is that node's link.
        agent.adopt(peer);
        await agent.rejoin(new GcsClient(peer, publishes));
      };
    } else {
      // Redis's client is loaded only by a head that uses it: it costs every other import of miniray about 80 ms.
      store = options.redis === undefined ? new InMemoryStoreClient() : await (await import('../gcs/redis-store.js')).RedisStoreClient.connect(options.redis);
      [gcsServer, gcsPeer] = await inProcessGcs(parts, store);
    }
    const router = routerFor(false);
    gcsServer?.register(router);
    listener = await listen({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      token: options.token ?? '',
      // The head's GCS sends its cluster-wide settings to whoever joins (see headSettings).
      hello: gcsServer === undefined ? helloAs('node') : { ...helloAs('gcs'), settings: clusterSettings() },
      router,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      onPeer: (peer) => agent.adopt(peer),
    });
    const address = formatHostPort(options.advertiseHost ?? listener.host, listener.port);
    const gcs = new GcsClient(gcsPeer, publishes);
    node.attachCluster(agent);
    await agent.join(gcs, address, options.isDriver ?? false);
    return member(parts, gcs, gcsPeer, gcsServer, listener, address, options.mode === 'join' ? (options.gcsAddress as string) : address, store);
  } catch (error) {
    agent.stop();
    gcsServer?.close();
    gcsPeer?.close('start failed');
    await listener?.close();
    await store?.close();
    await node.shutdown();
    if (options.mode === 'join') forgetClusterSettings();
    throw error;
  }
}

/**
 * The head's cluster-wide settings, from the hello its GCS answers a connection with, read before
 * this node is built. On a connection of its own (a 'cli' one, as `miniray status` makes), closed
 * at once, rather than on the node's GCS connection: that one carries the node's ID, which the
 * Node draws when it is built, and the Node reads its settings when it is built (its scheduler's
 * pipelining, its lineage and log budgets, its task-event buffer). Reading them lazily instead
 * would change every component that takes a setting at construction; this costs one more
 * handshake when a process joins, and nothing per task. With `waitForHead` it waits for the head
 * as the GCS link does (a node may start before its head), with this process's own
 * gcsReconnectTimeoutMs, since the head's is not known yet.
 */
async function headSettings(options: MemberOptions): Promise<Readonly<Record<string, number>>> {
  const gcsAddress = options.gcsAddress as string;
  const { host, port } = splitAddress(gcsAddress);
  const probe = new GcsLink({
    address: gcsAddress,
    connect: () =>
      connect({
        host,
        port,
        token: options.token ?? '',
        hello: { role: 'cli', nodeId: randomBytes(16).toString('hex') },
        router: new Router(),
        ...(options.tls === undefined ? {} : { tls: clientTls(options.tls) }),
      }),
    timeoutMs: setting('gcsReconnectTimeoutMs'),
  });
  try {
    return (await probe.open(options.waitForHead ?? false)).hello.settings ?? {};
  } finally {
    probe.close('settings read');
  }
}

/**
 * The embedded default, at once (a first .remote() starts it synchronously): a node with a GCS in
 * this process and no listener. Its registration with that GCS completes in the background; until
 * then, as after, it is the only node, so everything runs here.
 */
export function startEmbedded(nodeOptions: NodeOptions): ClusterMember {
  const parts = assemble({ mode: 'embedded', nodeOptions });
  // The embedded node is its GCS's head node (state.listNodes marks it isHead).
  const gcsServer = new GcsServer(new InMemoryStoreClient(), randomBytes(16).toString('hex'), { headNodeId: parts.node.nodeId });
  const gcsPeer = inProcessPeer(parts, gcsServer);
  const gcs = new GcsClient(gcsPeer, parts.publishes);
  parts.node.attachCluster(parts.agent);
  void parts.agent.join(gcs, 'this process', false).catch((error: unknown) => console.error('miniray: the embedded GCS refused this node:', error));
  return member(parts, gcs, gcsPeer, gcsServer, undefined, undefined, undefined);
}

type Parts = ReturnType<typeof assemble>;

/** The node, its agent, and how its connections are made (what it answers on each). */
function assemble(options: MemberOptions) {
  const node = new Node(options.nodeOptions);
  const isDriver = options.isDriver ?? false;
  const helloAs = (role: PeerHello['role']): PeerHello => ({ role, nodeId: node.nodeId });
  const publishes = new GcsPublishes();
  const agent: ClusterAgent = new ClusterAgent({
    node,
    connect: (address) => connectTo(address, false),
    canGrow: options.mode !== 'embedded',
    // The head's node (with the GCS, which keeps their creation) restarts detached actors.
    restartsDetached: options.mode !== 'join',
  });
  const routerFor = (withPublishes: boolean): Router => {
    const router = new Router();
    agent.register(router);
    if (withPublishes) publishes.register(router);
    return router;
  };
  const connectTo = (address: string, withPublishes: boolean): Promise<Peer> => {
    const { host, port } = splitAddress(address);
    return connect({
      host,
      port,
      token: options.token ?? '',
      hello: helloAs(isDriver ? 'driver' : 'node'),
      router: routerFor(withPublishes),
      ...(options.tls === undefined ? {} : { tls: clientTls(options.tls) }),
    });
  };
  return { node, agent, publishes, helloAs, routerFor, connectTo, isDriver };
}

/**
 * How this node checks the nodes it connects to: against MINIRAY_TLS_CA when set; otherwise the
 * cluster shares one certificate (each node started with the same --tls-cert/--tls-key), and a peer
 * must present exactly it (the certificate is its own authority, so host names do not matter).
 */
export function clientTls(own: { readonly cert: string }): { ca: string; rejectUnauthorized: true; checkServerIdentity?: () => undefined } {
  const caFile = process.env['MINIRAY_TLS_CA'];
  if (caFile) return { ca: readFileSync(caFile, 'utf8'), rejectUnauthorized: true };
  return { ca: own.cert, rejectUnauthorized: true, checkServerIdentity: () => undefined };
}

/** TLS from MINIRAY_TLS_CERT and MINIRAY_TLS_KEY (PEM files), for drivers; undefined when unset. */
export function tlsFromEnvironment(): { cert: string; key: string } | undefined {
  const certFile = process.env['MINIRAY_TLS_CERT'];
  const keyFile = process.env['MINIRAY_TLS_KEY'];
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new MinirayError('MINIRAY_TLS_CERT and MINIRAY_TLS_KEY go together: set both (PEM files), or neither');
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/**
 * The head's GCS on `store`, with what the store holds from before (GcsServer.start), and this
 * node's connection to it.
 */
async function inProcessGcs(parts: Parts, store: StoreClient): Promise<[GcsServer, Peer]> {
  const server = await GcsServer.start(store, { headNodeId: parts.node.nodeId, reconnectGraceMs: setting('gcsReconnectTimeoutMs') });
  return [server, inProcessPeer(parts, server)];
}

/** This node's connection to a GCS in this process (a pair of in-process peers). */
function inProcessPeer(parts: Parts, server: GcsServer): Peer {
  const serverRouter = new Router();
  server.register(serverRouter);
  const [toGcs] = localPair(
    { hello: parts.helloAs(parts.isDriver ? 'driver' : 'node'), router: parts.routerFor(true) },
    { hello: parts.helloAs('gcs'), router: serverRouter },
  );
  return toGcs;
}

function member(
  parts: Parts,
  gcs: GcsClient,
  gcsPeer: Peer | GcsLink,
  gcsServer: GcsServer | undefined,
  listener: Listener | undefined,
  address: string | undefined,
  gcsAddress: string | undefined,
  store?: StoreClient,
): ClusterMember {
  const { node, agent } = parts;
  node.taskEvents.sendTo((batch) => gcs.addTaskEvents(batch)); // task events go to the GCS in batches
  let stopping: Promise<void> | undefined;
  return {
    node,
    agent,
    gcs,
    address,
    gcsAddress,
    gcsClosed: new Promise<string>((resolve) => gcsPeer.onClose(resolve)),
    declaredDead: agent.declaredDead,
    gcsConnected: () => (gcsPeer instanceof GcsLink ? gcsPeer.connected : !gcsPeer.isClosed),
    stop: () =>
      (stopping ??= (async () => {
        node.taskEvents.flush(); // the last events, before the GCS connection closes
        agent.stop();
        // A driver that leaves its cluster reads its own environment's settings again.
        if (gcsPeer instanceof GcsLink) forgetClusterSettings();
        // The GCS first: the connections the listener closes are the head going, not nodes dying
        // (with Redis, a head restarted on it finds them alive).
        gcsServer?.close();
        gcsPeer.close('node stopped');
        await listener?.close();
        await store?.close();
        await node.shutdown();
      })()),
  };
}

function deathMessage(nodeId: string, reason: string): string {
  return `miniray: the GCS declared this node (${nodeId}) dead: ${reason}. A node declared dead does not rejoin as itself: it exits now (start a new node to add this machine again)`;
}

/** What `miniray start` runs: a head (GCS and node) or a node that joins one, until stopped. */
export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  if (!options.head && options.address === undefined) throw new MinirayError('startNode: a node that is not the head needs the head\'s address (HOST:PORT)');
  const numCpus = options.numCpus ?? availableParallelism();
  const resources: Record<string, number> = { ...options.resources };
  if (options.numGpus !== undefined && options.numGpus > 0) resources['GPU'] = options.numGpus;
  const member = await startMember({
    mode: options.head ? 'head' : 'join',
    nodeOptions: {
      numCpus,
      numWorkers: Math.min(1024, Math.max(1, Math.ceil(numCpus))),
      resources,
      objectStoreMemory: options.objectStoreMemory ?? defaultObjectStoreMemory(),
      workerResourceLimits: undefined,
      spillDirectory: undefined,
    },
    token: options.token,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.address === undefined ? {} : { gcsAddress: options.address }),
    host: options.nodeIpAddress ?? '127.0.0.1',
    ...(options.advertiseAddress === undefined ? {} : { advertiseHost: options.advertiseAddress }),
    port: options.port ?? (options.head ? DEFAULT_HEAD_PORT : 0),
    waitForHead: true,
    ...(options.redis === undefined ? {} : { redis: options.redis }),
  });
  await member.node.ready();
  const nodeId = member.node.nodeId;
  let dashboard: Awaited<ReturnType<typeof headDashboard>>;
  let jobs: Awaited<ReturnType<typeof headJobs>> | undefined; // jobs: the Jobs API rides on the head's dashboard
  try {
    const advertised = options.advertiseAddress ?? options.nodeIpAddress ?? '127.0.0.1';
    if (options.head && options.dashboard !== undefined) jobs = await headJobs(options.dashboard, member, options.token);
    dashboard = options.head && options.dashboard !== undefined ? await headDashboard(jobs?.place ?? options.dashboard, member, options.token, advertised) : undefined;
  } catch (error) {
    await jobs?.manager.close();
    await member.stop();
    throw error;
  }
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await jobs?.manager.close(); // jobs: the head's jobs stop with it, while the GCS can still record them STOPPED
    await dashboard?.close();
    await member.stop();
  };
  // A node the GCS declared dead (cut off past the health checks' timeout, then back, or refused
  // when it registered again) says so and ends (`miniray start` exits 1): it must not go on as a
  // zombie of itself. A node that lost the GCS for good (gcsReconnectTimeoutMs) ends too.
  const declaredDead = member.declaredDead.then((reason) => deathMessage(nodeId, reason));
  const gcsGone = member.gcsClosed.then((reason) => (stopping ? undefined : `miniray: this node exits: it lost the GCS at ${options.address} (${reason})`));
  const stopped = Promise.race([declaredDead, options.head ? new Promise<undefined>(() => {}) : gcsGone]).then(async (message) => {
    if (message !== undefined && !stopping) console.error(message);
    await stop();
  });
  return {
    nodeId: member.node.nodeId,
    address: member.address as string,
    gcsAddress: member.gcsAddress as string,
    health: () => (member.gcsConnected() ? { ok: true } : { ok: false, reason: 'GCS unreachable' }),
    stop,
    stopped,
    ...(dashboard === undefined ? {} : { dashboardUrl: dashboard.url }),
  };
}

/**
 * The head's JobManager and the dashboard place with its routes added. Loaded only by a head with
 * a dashboard (tar and the job code cost every other process nothing).
 */
async function headJobs(place: DashboardPlace, member: ClusterMember, token: string) {
  const { JobManager, jobRoutes } = await import('../jobs/index.js');
  const manager = await JobManager.forHead({ gcs: member.gcs, gcsAddress: member.gcsAddress as string, token });
  const withRoutes: DashboardPlace = { ...place, plugins: (head) => [...(place.plugins?.(head) ?? []), jobRoutes(manager)] };
  return { manager, place: withRoutes };
}

/**
 * The head's dashboard over its own GCS client, or undefined when its port is taken (a warning:
 * the cluster matters more than its page). The server is loaded only here: fastify costs every
 * other import of miniray its load time.
 */
async function headDashboard(place: DashboardPlace, member: ClusterMember, token: string, advertised: string): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const { startDashboard, isAddressInUse } = await import('../dashboard/index.js');
  const { DASHBOARD_URL_KEY, urlHost } = await import('../dashboard/kv.js');
  const { observabilitySources } = await import('../state/sources.js');
  const gcsAddress = member.gcsAddress as string;
  const { namespace, key } = DASHBOARD_URL_KEY;
  try {
    const dashboard = await startDashboard({
      ...(place.host === undefined ? {} : { host: place.host }),
      port: place.port,
      token,
      ...observabilitySources(member.gcs),
      ...(place.plugins === undefined ? {} : { plugins: place.plugins({ gcs: member.gcs, gcsAddress, token }) }),
    });
    // Bound to every interface, it is reached at the address the nodes are told.
    const host = ['0.0.0.0', '::', '[::]'].includes(dashboard.host) ? advertised : dashboard.host;
    const url = `http://${urlHost(host)}:${dashboard.port}`;
    await member.gcs.kvPut(namespace, key, new TextEncoder().encode(url)).catch(() => false);
    return { url, close: () => dashboard.close() };
  } catch (error) {
    if (!isAddressInUse(error)) throw error;
    // A head restarted on Redis must not leave its predecessor's URL for drivers to find.
    await member.gcs.kvDel(namespace, key).catch(() => false);
    console.error(
      `miniray: warning: the dashboard's port ${place.host ?? '127.0.0.1'}:${place.port} is taken, so the head runs without a dashboard ` +
        '(start it with --dashboard-port <another port>, or 0 for any free one)',
    );
    return undefined;
  }
}
