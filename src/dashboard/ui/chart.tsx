/** The tasks-by-state chart: one uPlot line per state, a point per poll. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { TaskCounts } from '../snapshot.js';

export type History = { times: number[]; counts: TaskCounts[]; version: number };

const STATES = [
  ['PENDING_ARGS_AVAIL', '#9e9e9e'],
  ['PENDING_NODE_ASSIGNMENT', '#ff9800'],
  ['SUBMITTED_TO_WORKER', '#03a9f4'],
  ['RUNNING', '#2e7d32'],
  ['FINISHED', '#3f51b5'],
  ['FAILED', '#d32f2f'],
] as const;

function dataOf(history: History): uPlot.AlignedData {
  return [history.times, ...STATES.map(([state]) => history.counts.map((counts) => counts[state] ?? 0))];
}

export function TaskChart({ history }: { history: History }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const element = box.current;
    if (element === null) return undefined;
    const options: uPlot.Options = {
      width: Math.max(320, element.clientWidth),
      height: 220,
      series: [{}, ...STATES.map(([state, stroke]) => ({ label: state, stroke, width: 2, points: { show: false } }))],
      axes: [{}, { label: 'attempts' }],
      scales: { x: { time: true } },
    };
    plot.current = new uPlot(options, dataOf(history), element);
    const onResize = () => plot.current?.setSize({ width: Math.max(320, element.clientWidth), height: 220 });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(dataOf(history));
  }, [history.version]);
  return (
    <section>
      <h2>Tasks by state</h2>
      <div ref={box} class="chart" data-testid="task-chart" />
    </section>
  );
}
