/** The page's views: each draws sections of the snapshot (see ../snapshot.ts) as tables. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Sections } from '../snapshot.js';
import type { ListResult, LogLine, NodeStats, TaskEntry } from '../../state/types.js';

type Props = { sections: Partial<Sections> };

const short = (id: string | undefined) => (id === undefined ? '' : id.slice(0, 8));
const time = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toLocaleTimeString());

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function Table({ head, children, testid, empty }: { head: string[]; children: ComponentChildren[]; testid: string; empty: string }) {
  if (children.length === 0) return <p class="empty" data-testid={`${testid}-empty`}>{empty}</p>;
  return (
    <table data-testid={testid}>
      <thead>
        <tr>
          {head.map((h) => (
            <th>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

/** "12 of 30 shown": a list the snapshot cut short links to its JSON route for the rest. */
function More({ list, route }: { list: ListResult<unknown> | undefined; route: string }) {
  if (list === undefined || list.total <= list.records.length) return null;
  return (
    <p class="more">
      {list.records.length} of {list.total} shown; all: <a href={route}>{route}</a>
    </p>
  );
}

function Partial({ list }: { list: ListResult<unknown> | undefined }) {
  if (list === undefined || (list.partial.length === 0 && list.dropped === 0)) return null;
  return (
    <p class="warn">
      {list.partial.length > 0 && `Nodes that did not answer: ${list.partial.map(short).join(', ')}. `}
      {list.dropped > 0 && `${list.dropped} task events were dropped under load: the list may miss some.`}
    </p>
  );
}

const loading = <p class="empty">Loading…</p>;

function resources(total: Readonly<Record<string, number>>, available: Readonly<Record<string, number>>): string {
  return Object.entries(total)
    .map(([name, amount]) => `${name} ${+(amount - (available[name] ?? 0)).toFixed(2)}/${amount}`)
    .join(', ');
}

export function ClusterView({ sections }: Props) {
  const { nodes, nodeStats, objectSummary } = sections;
  if (nodes === undefined) return loading;
  const stats = new Map<string, NodeStats>((nodeStats ?? []).map((s) => [s.nodeId, s]));
  const alive = nodes.records.filter((n) => n.state === 'ALIVE').length;
  return (
    <section>
      <h2>
        Cluster: {alive} node{alive === 1 ? '' : 's'} alive
        {objectSummary === undefined ? '' : `, ${objectSummary.totalObjects} objects (${bytes(objectSummary.totalBytes)})`}
      </h2>
      <Table head={['node', 'address', 'state', 'role', 'resources used/total', 'store used/capacity', 'spilled', 'objects', 'workers', 'queued']} testid="nodes" empty="No nodes.">
        {nodes.records.map((node) => {
          const s = stats.get(node.nodeId);
          return (
            <tr data-testid="node-row" data-state={node.state} title={node.nodeId}>
              <td class="id">{short(node.nodeId)}</td>
              <td>{node.address}</td>
              <td class={`state ${node.state}`}>{node.state}</td>
              <td>{node.isHead ? 'head' : node.isDriver ? 'driver' : 'node'}</td>
              <td>{resources(node.resourcesTotal, node.resourcesAvailable)}</td>
              <td>{s === undefined ? '' : `${bytes(s.storeUsedBytes)} / ${bytes(s.storeCapacityBytes)}`}</td>
              <td>{s === undefined ? '' : `${bytes(s.spilledBytes)} (${s.spilledObjects})`}</td>
              <td>{s?.objects ?? ''}</td>
              <td>{s?.workers ?? ''}</td>
              <td>{s?.queuedTasks ?? ''}</td>
            </tr>
          );
        })}
      </Table>
      <Partial list={nodes} />
    </section>
  );
}

export function JobsView({ sections }: Props) {
  const { jobs } = sections;
  if (jobs === undefined) return loading;
  return (
    <section>
      <h2>Jobs</h2>
      <Table head={['job', 'submission', 'status', 'entrypoint', 'driver node', 'started', 'ended']} testid="jobs" empty="No jobs yet.">
        {jobs.records.map((job) => (
          <tr data-testid="job-row" data-status={job.status}>
            <td>{job.jobId}</td>
            <td>{job.submissionId ?? ''}</td>
            <td class={`state ${job.status}`}>{job.status}</td>
            <td class="code">{job.entrypoint ?? ''}</td>
            <td class="id">{short(job.driverNodeId)}</td>
            <td>{time(job.startTimeMs)}</td>
            <td>{time(job.endTimeMs)}</td>
          </tr>
        ))}
      </Table>
      <More list={jobs} route="/api/state/jobs?limit=10000" />
    </section>
  );
}

const logsLink = (key: 'taskId' | 'actorId', id: string | undefined) =>
  id === undefined ? null : (
    <a href={`#logs?${key}=${id}`} data-testid="logs-link">
      logs
    </a>
  );

function taskRow(task: TaskEntry) {
  return (
    <tr data-testid="task-row" data-state={task.state} data-name={task.name} title={task.taskId}>
      <td class="id">{short(task.taskId)}</td>
      <td>{task.name}</td>
      <td class={`state ${task.state}`}>{task.state}</td>
      <td>{task.attempt}</td>
      <td class="id">{short(task.nodeId)}</td>
      <td class="id">{short(task.workerId)}</td>
      <td>{time(task.startTimeMs ?? task.creationTimeMs)}</td>
      <td>{logsLink('taskId', task.taskId)}</td>
    </tr>
  );
}

export function TasksView({ sections }: Props) {
  const { taskSummary, activeTasks, failedTasks } = sections;
  if (taskSummary === undefined) return loading;
  const names = Object.entries(taskSummary.byName).sort(([a], [b]) => a.localeCompare(b));
  const states = ['PENDING_ARGS_AVAIL', 'PENDING_NODE_ASSIGNMENT', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED', 'FAILED'] as const;
  return (
    <>
      <section>
        <h2>By function ({taskSummary.total} attempts)</h2>
        <Table head={['name', 'type', ...states]} testid="task-summary" empty="No tasks yet.">
          {names.map(([name, { type, states: counts }]) => (
            <tr data-testid="task-summary-row" data-name={name}>
              <td>{name}</td>
              <td>{type}</td>
              {states.map((state) => (
                <td class="num" data-state={state}>
                  {counts[state] ?? 0}
                </td>
              ))}
            </tr>
          ))}
        </Table>
      </section>
      <section>
        <h2>Running and waiting</h2>
        <Table head={['task', 'name', 'state', 'attempt', 'node', 'worker', 'since', '']} testid="active-tasks" empty="Nothing runs or waits.">
          {(activeTasks?.records ?? []).map(taskRow)}
        </Table>
        <Partial list={activeTasks} />
        <More list={activeTasks} route="/api/state/tasks?filter=state!=FINISHED&filter=state!=FAILED&limit=10000" />
      </section>
      <section>
        <h2>Failed</h2>
        <Table head={['task', 'name', 'attempt', 'node', 'error', '']} testid="failed-tasks" empty="No failed tasks.">
          {(failedTasks?.records ?? []).map((task) => (
            <tr data-testid="failed-row" title={task.taskId}>
              <td class="id">{short(task.taskId)}</td>
              <td>{task.name}</td>
              <td>{task.attempt}</td>
              <td class="id">{short(task.nodeId)}</td>
              <td class="error-text">
                <b>{task.errorType ?? 'Error'}</b>: {task.errorMessage ?? ''}
              </td>
              <td>{logsLink('taskId', task.taskId)}</td>
            </tr>
          ))}
        </Table>
        <More list={failedTasks} route="/api/state/tasks?filter=state=FAILED&limit=10000" />
      </section>
    </>
  );
}

export function ActorsView({ sections }: Props) {
  const { actors } = sections;
  if (actors === undefined) return loading;
  return (
    <section>
      <h2>Actors</h2>
      <Table head={['actor', 'class', 'name', 'state', 'restarts', 'node', 'death cause', '']} testid="actors" empty="No actors.">
        {actors.records.map((actor) => (
          <tr data-testid="actor-row" data-state={actor.state} data-class={actor.className} title={actor.actorId}>
            <td class="id">{short(actor.actorId)}</td>
            <td>{actor.className}</td>
            <td>{actor.name ?? ''}</td>
            <td class={`state ${actor.state}`}>{actor.state}</td>
            <td>
              {actor.numRestarts}/{actor.maxRestarts === -1 ? '∞' : actor.maxRestarts}
            </td>
            <td class="id">{short(actor.nodeId)}</td>
            <td>{actor.deathCause ?? ''}</td>
            <td>{logsLink('actorId', actor.actorId)}</td>
          </tr>
        ))}
      </Table>
      <More list={actors} route="/api/state/actors?limit=10000" />
    </section>
  );
}

export function ObjectsView({ sections }: Props) {
  const { objectSummary, objects } = sections;
  if (objectSummary === undefined) return loading;
  return (
    <>
      <section>
        <h2>
          Memory: {objectSummary.totalObjects} objects, {bytes(objectSummary.totalBytes)}
        </h2>
        <Table head={['node', 'objects', 'bytes', 'spilled objects', 'spilled bytes']} testid="memory" empty="No objects.">
          {Object.entries(objectSummary.byNode).map(([nodeId, node]) => (
            <tr data-testid="memory-row">
              <td class="id">{short(nodeId)}</td>
              <td class="num">{node.objects}</td>
              <td class="num">{bytes(node.bytes)}</td>
              <td class="num">{node.spilledObjects}</td>
              <td class="num">{bytes(node.spilledBytes)}</td>
            </tr>
          ))}
        </Table>
      </section>
      <section>
        <h2>Objects</h2>
        <Table head={['object', 'node', 'state', 'size', 'where', 'owner', 'kept alive by']} testid="objects" empty="No objects.">
          {(objects?.records ?? []).map((object) => (
            <tr data-testid="object-row" title={object.objectId}>
              <td class="id">{short(object.objectId)}</td>
              <td class="id">{short(object.nodeId)}</td>
              <td>{object.state}</td>
              <td class="num">{bytes(object.sizeBytes)}</td>
              <td>{object.location}</td>
              <td>{object.owner}</td>
              <td>{object.referencedBy.join(', ')}</td>
            </tr>
          ))}
        </Table>
        <Partial list={objects} />
        <More list={objects} route="/api/state/objects?limit=10000" />
      </section>
    </>
  );
}

/** Logs of one task or actor (or all), followed every 2 s while the view is open. */
export function LogsView({ params }: { params: URLSearchParams }) {
  const taskId = params.get('taskId') ?? undefined;
  const actorId = params.get('actorId') ?? undefined;
  const [lines, setLines] = useState<readonly LogLine[]>([]);
  const [problem, setProblem] = useState<string | undefined>(undefined);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const after: Record<string, number> = {};
    let kept: LogLine[] = [];
    setLines([]);
    const read = async () => {
      const query = new URLSearchParams();
      if (taskId !== undefined) query.set('taskId', taskId);
      if (actorId !== undefined) query.set('actorId', actorId);
      for (const [nodeId, seq] of Object.entries(after)) query.append('after', `${nodeId}:${seq}`);
      try {
        const reply = await fetch(`/api/logs?${query}`);
        const body = (await reply.json()) as { lines?: LogLine[]; message?: string };
        if (!reply.ok) {
          setProblem(body.message ?? `HTTP ${reply.status}`);
        } else if (body.lines !== undefined && !stopped) {
          setProblem(undefined);
          for (const line of body.lines) after[line.nodeId] = Math.max(after[line.nodeId] ?? -1, line.seq);
          kept = [...kept, ...body.lines].slice(-5000);
          setLines(kept);
        }
      } catch (error) {
        setProblem(String(error));
      }
      if (!stopped) timer = setTimeout(() => void read(), 2000);
    };
    void read();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [taskId, actorId]);
  const what = taskId !== undefined ? `task ${short(taskId)}` : actorId !== undefined ? `actor ${short(actorId)}` : 'every task and actor';
  return (
    <section>
      <h2>Logs of {what}</h2>
      {problem !== undefined && <p class="error" data-testid="logs-problem">{problem}</p>}
      {lines.length === 0 ? (
        <p class="empty" data-testid="logs-empty">No output yet.</p>
      ) : (
        <pre class="logs" data-testid="logs">
          {lines.map((line) => (
            <div class={line.stream} data-testid="log-line">
              <span class="prefix">
                {time(line.timeMs)} ({line.name} worker={short(line.workerId)} node={short(line.nodeId)})
              </span>{' '}
              {line.text}
            </div>
          ))}
        </pre>
      )}
    </section>
  );
}
