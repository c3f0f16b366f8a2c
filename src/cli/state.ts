/**
 * The observability commands, as Ray's state CLI: `miniray list`, `summary`, `memory`, `timeline`
 * and `logs`. Each connects to the cluster's GCS as `miniray status` does (same --address, token
 * and TLS) and reads it through a StateSource and a LogSource, which tests replace with fakes
 * (`StateCommandIO.open`).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Argument, Command, Option } from 'commander';
import { MinirayError } from '../errors/index.js';
import { formatLogLine } from '../state/log-lines.js';
import { afterLines, followLogs } from '../state/logs.js';
import { readTimeline } from '../state/timeline.js';
import type { LogLine, LogSource, ObjectStateEntry, StateKind, StateSource } from '../state/types.js';
import { asArgParser } from './flags.js';
import { openSources } from './sources.js';
import {
  STATE_KINDS,
  checkFilters,
  formatActorSummary,
  formatMemory,
  formatObjectSummary,
  formatRecords,
  formatTaskSummary,
  parseFilter,
  parseLimit,
  parseTail,
  type MemoryGroup,
  type RawFilter,
} from './state-format.js';

/** What a command reads the cluster through, and how it lets go of it. */
export interface StateSources {
  readonly state: StateSource;
  readonly logs: LogSource;
  close(): void;
}

/** What the commands do I/O through: the defaults are the real cluster, stdout, stderr, files and the clock. */
export interface StateCommandIO {
  /** Connects for `command` ('miniray list', ...) to the cluster at the --address given (undefined: as `status` finds it). */
  open(command: string, address: string | undefined): Promise<StateSources>;
  out(text: string): void;
  err(text: string): void;
  writeFile(path: string, text: string): void;
  now(): Date;
  /** How often `logs --follow` asks for new lines. */
  readonly followIntervalMs: number;
  /** What ends `logs --follow` (default: SIGINT, Ctrl-C). */
  followUntil(): AbortSignal;
}

const DEFAULT_LIMIT = 100;
/** `miniray memory` lists this many objects at most (Ray's `ray memory` shows every one; this bounds the answer). */
const MEMORY_LIMIT = 10_000;
const DEFAULT_TAIL = 1000;

const defaultIO: StateCommandIO = {
  open: openSources,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  writeFile: (path, text) => writeFileSync(path, text),
  now: () => new Date(),
  followIntervalMs: 500,
  followUntil: () => {
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    return controller.signal;
  },
};

type Format = 'table' | 'json';
interface CommonFlags {
  readonly address?: string;
  readonly format: Format;
}

const ADDRESS_HELP = "the head's HOST:PORT (default: MINIRAY_ADDRESS, else the latest head started on this machine)";

function common(command: Command): Command {
  return command
    .option('--address <host:port>', ADDRESS_HELP)
    .addOption(new Option('--format <format>', 'table for a person, json for a program').choices(['table', 'json']).default('table'));
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** A timeline file's default name, as Ray's `ray timeline` names it: the local time it was taken. */
export function timelineFileName(at: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `miniray-timeline-${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}_${two(at.getHours())}-${two(at.getMinutes())}-${two(at.getSeconds())}.json`;
}

/** Adds list, summary, memory, timeline and logs to `program` (`io` replaces the cluster and the terminal in tests). */
export function registerStateCommands(program: Command, io: Partial<StateCommandIO> = {}): void {
  const { open, out, err, writeFile, now, followIntervalMs, followUntil } = { ...defaultIO, ...io };

  /** Runs `body` with the cluster's sources, closed after whatever happens. */
  const withSources = async <T>(command: string, address: string | undefined, body: (sources: StateSources) => Promise<T>): Promise<T> => {
    const sources = await open(command, address);
    try {
      return await body(sources);
    } finally {
      sources.close();
    }
  };

  /** What a list left out, on stderr so that --format json stays one document. */
  const notes = (kind: StateKind, shown: number, total: number, partial: readonly string[], dropped: number) => {
    if (total > shown) err(`Showing ${shown} of ${total} ${kind}: --limit ${total} shows them all.\n`);
    if (partial.length > 0) err(`Warning: ${partial.length} node(s) did not answer (${partial.join(', ')}): their ${kind} are missing.\n`);
    if (kind === 'tasks' && dropped > 0) err(`Warning: under load the cluster dropped ${dropped} task events or sampled-out tasks: about that many task attempts are missing or out of date (see taskEventsMaxTasksPerSecond).\n`);
  };

  common(
    program
      .command('list')
      .description('List the cluster\'s tasks, actors, objects, nodes, jobs or workers (as Ray\'s `ray list`).')
      .addArgument(new Argument('<kind>', 'what to list').choices(STATE_KINDS))
      .option('--filter <key=value>', 'keep records whose field is (=) or is not (!=) value; repeat to combine (e.g. --filter state=FAILED)', (text: string, previous: RawFilter[] | undefined) => asArgParser((t: string) => parseFilter(t, previous))(text))
      .option('--limit <n>', 'at most this many records', asArgParser(parseLimit), DEFAULT_LIMIT)
      .option('--detail', 'every field of each record (a task\'s state changes and profile spans too)'),
  ).action(async (kind: StateKind, flags: CommonFlags & { filter?: RawFilter[]; limit: number; detail?: boolean }) => {
    const filters = checkFilters(kind, flags.filter ?? []);
    const detail = flags.detail === true;
    const result = await withSources('miniray list', flags.address, ({ state }) => state.list(kind, { filters, limit: flags.limit, detail }));
    out(flags.format === 'json' ? json(result.records) : formatRecords(kind, result.records, detail));
    notes(kind, result.records.length, result.total, result.partial, result.dropped);
  });

  common(
    program
      .command('summary')
      .description('Count tasks per function and state, actors per class and state, or objects and bytes per node (as Ray\'s `ray summary`).')
      .addArgument(new Argument('<kind>', 'what to summarize').choices(['tasks', 'actors', 'objects'])),
  ).action(async (kind: 'tasks' | 'actors' | 'objects', flags: CommonFlags) => {
    await withSources('miniray summary', flags.address, async ({ state }) => {
      if (kind === 'tasks') {
        const summary = await state.summarizeTasks();
        out(flags.format === 'json' ? json(summary) : formatTaskSummary(summary));
      } else if (kind === 'actors') {
        const summary = await state.summarizeActors();
        out(flags.format === 'json' ? json(summary) : formatActorSummary(summary));
      } else {
        const summary = await state.summarizeObjects();
        out(flags.format === 'json' ? json(summary) : formatObjectSummary(summary));
      }
    });
  });

  common(
    program
      .command('memory')
      .description('Objects in the cluster per node, with their size, owner and what keeps each alive, and each store\'s use (as Ray\'s `ray memory`).')
      .option('--limit <n>', 'at most this many objects', asArgParser(parseLimit), MEMORY_LIMIT),
  ).action(async (flags: CommonFlags & { limit: number }) => {
    await withSources('miniray memory', flags.address, async ({ state }) => {
      const [objects, nodes, stats, summary] = await Promise.all([
        state.list('objects', { limit: flags.limit }),
        state.list('nodes', { limit: MEMORY_LIMIT }),
        state.nodeStats(),
        state.summarizeObjects(),
      ]);
      const byNode = new Map<string, MemoryGroup & { objects: ObjectStateEntry[] }>();
      const group = (nodeId: string) => {
        let found = byNode.get(nodeId);
        if (found === undefined) {
          const address = nodes.records.find((n) => n.nodeId === nodeId)?.address;
          const nodeStats = stats.find((s) => s.nodeId === nodeId);
          found = { nodeId, ...(address === undefined ? {} : { address }), ...(nodeStats === undefined ? {} : { stats: nodeStats }), objects: [] };
          byNode.set(nodeId, found);
        }
        return found;
      };
      // Every node that answered is shown, with or without objects, so that an empty store is seen as such.
      for (const s of stats) group(s.nodeId);
      for (const object of objects.records) group(object.nodeId).objects.push(object);
      const groups = [...byNode.values()];
      out(flags.format === 'json' ? json({ nodes: groups, summary }) : formatMemory(groups, summary, now()));
      notes('objects', objects.records.length, objects.total, objects.partial, 0);
    });
  });

  program
    .command('timeline')
    .description('Write the cluster\'s task timeline as Chrome trace events, to open in Perfetto or chrome://tracing (as Ray\'s `ray timeline`).')
    .option('--address <host:port>', ADDRESS_HELP)
    .option('--output <file>', 'where to write it (default: miniray-timeline-<date>_<time>.json here)')
    .action(async (flags: { address?: string; output?: string }) => {
      const taken = now();
      const read = await withSources('miniray timeline', flags.address, ({ state }) => readTimeline(state, taken.getTime()));
      const path = resolve(flags.output ?? timelineFileName(taken));
      try {
        writeFile(path, JSON.stringify(read.trace));
      } catch (error) {
        throw new MinirayError(`miniray timeline: cannot write ${path}: ${(error as Error).message}. Give another file with --output`, { cause: error });
      }
      out(
        `Wrote the timeline of ${read.tasks} task attempts (${read.trace.traceEvents.length} trace events) to ${path}\n` +
          'Open it in Perfetto (https://ui.perfetto.dev, "Open trace file") or in Chrome at chrome://tracing ("Load").\n',
      );
      if (read.total > read.tasks) err(`The cluster has ${read.total} task attempts; the timeline holds the latest ${read.tasks}.\n`);
      if (read.dropped > 0) err(`Warning: under load the cluster dropped ${read.dropped} task events or sampled-out tasks: about that many task attempts are missing (see taskEventsMaxTasksPerSecond).\n`);
    });

  program
    .command('logs')
    .description('Print what tasks and actors wrote to stdout and stderr, as their nodes kept it (every task\'s, or one task\'s or actor\'s).')
    .option('--address <host:port>', ADDRESS_HELP)
    .addOption(new Option('--task <id>', 'only the lines of this task (its taskId, as `miniray list tasks` shows)').conflicts('actor'))
    .option('--actor <id>', 'only the lines of this actor (its actorId, as `miniray list actors` shows)')
    .option('--follow', 'keep printing new lines until Ctrl-C')
    .option('--tail <n>', 'the latest n lines', asArgParser(parseTail), DEFAULT_TAIL)
    .action(async (flags: { address?: string; task?: string; actor?: string; follow?: boolean; tail: number }) => {
      await withSources('miniray logs', flags.address, async ({ logs }) => {
        const who = { ...(flags.task === undefined ? {} : { taskId: flags.task }), ...(flags.actor === undefined ? {} : { actorId: flags.actor }) };
        const print = (lines: readonly LogLine[]) => {
          for (const line of lines) (line.stream === 'stderr' ? err : out)(`${formatLogLine(line)}\n`);
        };
        const first = await logs.logs({ ...who, tail: flags.tail });
        print(first.lines);
        const refused = new Set((first.errors ?? []).map((e) => e.nodeId));
        const silent = first.partial.filter((nodeId) => !refused.has(nodeId));
        if (silent.length > 0) err(`Warning: ${silent.length} node(s) did not answer (${silent.join(', ')}): their lines are missing.\n`);
        for (const { nodeId, message } of first.errors ?? []) err(`Warning: node ${nodeId} answered with an error, its lines are missing: ${message}\n`);
        if (flags.follow !== true) return;
        // The logs part's follower: from each node's latest line (the source's cursor: also past the
        // lines the tail cut), every new line as it comes.
        const after = { ...afterLines(undefined, first.lines), ...first.cursor };
        for await (const batch of followLogs(logs, { ...who, after }, { intervalMs: followIntervalMs, signal: followUntil() })) print(batch);
      });
    });
}
