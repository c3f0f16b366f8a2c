/**
 * The dashboard's page: one EventSource on /api/events (the server pushes a snapshot, then what
 * changes), views drawn with preact, the tasks-by-state chart with uPlot. The token is in an
 * HttpOnly cookie the page cannot read: every request of the page carries it by itself.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type { Sections, SnapshotEvent } from '../snapshot.js';
import { TaskChart, type History } from './chart.js';
import { ActorsView, ClusterView, JobsView, LogsView, ObjectsView, TasksView } from './views.js';

const VIEWS = ['cluster', 'jobs', 'tasks', 'actors', 'objects', 'logs'] as const;
type View = (typeof VIEWS)[number];

/** Points the chart keeps: 10 minutes at one per 500 ms poll. */
const HISTORY_POINTS = 1200;

type Route = { view: View; params: URLSearchParams };

function routeOf(hash: string): Route {
  const [name = '', query = ''] = hash.replace(/^#/, '').split('?');
  const view = (VIEWS as readonly string[]).includes(name) ? (name as View) : 'cluster';
  return { view, params: new URLSearchParams(query) };
}

type Live = 'connecting' | 'live' | 'reconnecting' | 'refused';

function App() {
  const [route, setRoute] = useState<Route>(() => routeOf(location.hash));
  const [sections, setSections] = useState<Partial<Sections>>({});
  const [errors, setErrors] = useState<SnapshotEvent['errors']>({});
  const [live, setLive] = useState<Live>('connecting');
  const [updatedAt, setUpdatedAt] = useState<number | undefined>(undefined);
  const [history] = useState<History>(() => ({ times: [], counts: [], version: 0 }));
  const [, setVersion] = useState(0);
  const [info, setInfo] = useState<{ logs: boolean; timeline: boolean }>({ logs: false, timeline: false });

  useEffect(() => {
    void fetch('/api/info').then(async (reply) => {
      if (reply.ok) setInfo((await reply.json()) as { logs: boolean; timeline: boolean });
    });
  }, []);

  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    const source = new EventSource('/api/events');
    const take = (whole: boolean) => (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as SnapshotEvent;
      setLive('live');
      setSections((old) => (whole ? event.sections : { ...old, ...event.sections }));
      setErrors(event.errors);
      setUpdatedAt(event.timeMs);
      history.times.push(event.timeMs / 1000);
      history.counts.push(event.counts);
      if (history.times.length > HISTORY_POINTS) {
        history.times.shift();
        history.counts.shift();
      }
      history.version++;
      setVersion(history.version);
    };
    source.addEventListener('snapshot', take(true) as EventListener);
    source.addEventListener('update', take(false) as EventListener);
    source.onerror = () => {
      // EventSource retries by itself; a refused token (the cookie expired or was cleared) does not heal.
      void fetch('/api/state/nodes?limit=1').then(
        (reply) => setLive(reply.status === 401 || reply.status === 403 ? 'refused' : 'reconnecting'),
        () => setLive('reconnecting'),
      );
    };
    return () => source.close();
  }, []);

  const failing = Object.entries(errors);
  return (
    <div class="app">
      <header>
        <h1>miniray</h1>
        <nav>
          {VIEWS.map((view) => (
            <a href={`#${view}`} class={route.view === view ? 'active' : ''} data-testid={`tab-${view}`}>
              {view}
            </a>
          ))}
          {info.timeline && (
            <a href="/api/timeline" data-testid="timeline-link" title="Chrome trace events: open the file in Perfetto (ui.perfetto.dev) or chrome://tracing">
              timeline
            </a>
          )}
        </nav>
        <span class={`live ${live}`} data-testid="status">
          {live}
          {updatedAt === undefined ? '' : ` · ${new Date(updatedAt).toLocaleTimeString()}`}
        </span>
      </header>
      {live === 'refused' && <p class="error">The cluster token was refused: open the URL with ?token= that `miniray start --head` printed.</p>}
      {failing.length > 0 && (
        <p class="error" data-testid="source-errors">
          {failing.map(([name, message]) => `${name}: ${message}`).join('; ')}
        </p>
      )}
      <main>
        {route.view === 'cluster' && <ClusterView sections={sections} />}
        {route.view === 'jobs' && <JobsView sections={sections} />}
        {route.view === 'tasks' && (
          <>
            <TaskChart history={history} />
            <TasksView sections={sections} />
          </>
        )}
        {route.view === 'actors' && <ActorsView sections={sections} />}
        {route.view === 'objects' && <ObjectsView sections={sections} />}
        {route.view === 'logs' && <LogsView params={route.params} />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
