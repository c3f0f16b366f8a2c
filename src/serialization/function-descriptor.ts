/**
 * How a function reaches a worker. Two ways, chosen when remote() is called:
 *
 *  - source: a self-contained function (no free variables but globals) is shipped as its source
 *    text and compiled once per worker, cached by content hash.
 *  - module: a function that uses names from its module (imports, other top-level functions, the
 *    RemoteFunction itself) and whose remote() call sits in a module other than the program's entry
 *    script is found in the worker by importing that module, where the same remote() call registers
 *    it under the same call-site key.
 *
 * A function in the entry script that captures outer variables cannot be shipped either way (the
 * entry script cannot be re-run in a worker), so remote() rejects it, naming the variables.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, type Node as AcornNode } from 'acorn';
import { analyze } from 'eslint-scope';
import { CapturedVariableError, InvalidOptionError } from '../errors/index.js';

export type FunctionDescriptor =
  | { readonly kind: 'source'; readonly id: string; readonly name: string; readonly source: string }
  | {
      readonly kind: 'module';
      readonly id: string;
      readonly name: string;
      /** file: URL of the module whose top-level remote() call created the function. */
      readonly moduleUrl: string;
      /** Key of that remote() call within the module (line:column#ordinal, in the loaded code). */
      readonly callsite: string;
      /** The call as the user wrote it (file:line), for messages. */
      readonly where: string;
    };

/** Where a remote() call was made. */
export interface CallSite {
  /** file: URL, or undefined when the caller is not a file (REPL, eval). */
  readonly moduleUrl: string | undefined;
  /** Position in the code as loaded (after any transpiling): stable across threads, used in keys. */
  readonly line: number;
  readonly column: number;
  /** Line in the original source when source maps are on (for messages only). */
  readonly sourceLine: number;
}

// Names that exist in every worker: the globals of a fresh Node.js context, snapshotted before user
// code runs, plus the helper esbuild/tsx injects into transpiled functions (`__name`), which the
// worker runtime defines.
const WORKER_GLOBALS = new Set([...Object.getOwnPropertyNames(globalThis), 'globalThis', '__name']);

export function hashId(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Finds the call site of the function that called `callee` (e.g. the user's remote() call). */
export function callerOf(callee: Function): CallSite {
  const original = Error.prepareStackTrace;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  let frame: NodeJS.CallSite | undefined;
  try {
    Error.prepareStackTrace = (_error, frames) => frames;
    Error.captureStackTrace(holder, callee);
    frame = holder.stack?.[0];
  } finally {
    Error.prepareStackTrace = original;
  }
  const file = frame?.getFileName() ?? undefined;
  let moduleUrl: string | undefined;
  if (file?.startsWith('file:')) moduleUrl = file;
  else if (file?.startsWith('/')) moduleUrl = pathToFileURL(file).href;
  const line = frame?.getLineNumber() ?? 0;
  // The formatted stack is source-mapped (e.g. under tsx), so its line is the one the user wrote.
  const formatted: { stack?: string } = {};
  Error.captureStackTrace(formatted, callee);
  const mapped = /:(\d+):\d+\)?$/m.exec(formatted.stack?.split('\n')[1] ?? '');
  return { moduleUrl, line, column: frame?.getColumnNumber() ?? 0, sourceLine: mapped ? Number(mapped[1]) : line };
}

/** A readable name for an anonymous function: where remote() was called. */
function anonymousName(callsite: CallSite): string {
  if (callsite.moduleUrl === undefined) return 'anonymous';
  const file = callsite.moduleUrl.slice(callsite.moduleUrl.lastIndexOf('/') + 1);
  return `anonymous (${file}:${callsite.sourceLine})`;
}

let entryPath: string | null | undefined;
/** The real path of the program's entry script (process.argv[1]), or null when there is none. */
function entryScriptPath(): string | null {
  if (entryPath === undefined) {
    const arg = process.argv[1];
    try {
      entryPath = arg ? realpathSync(arg) : null;
    } catch {
      entryPath = arg ?? null;
    }
  }
  return entryPath;
}

function isEntryScript(moduleUrl: string): boolean {
  const entry = entryScriptPath();
  if (entry === null) return false;
  let path: string;
  try {
    path = realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
  // `node app` runs app.js: compare without the extension when argv[1] had none.
  return path === entry || path.replace(/\.[cm]?[jt]sx?$/, '') === entry;
}

// Ordinals of remote() calls per call site, so that a helper that calls remote() for several
// functions from one line still gives each a distinct key (module evaluation order is deterministic).
const callsiteOrdinals = new Map<string, number>();

/**
 * Decides how `fn` travels. Throws CapturedVariableError for an entry-script function that
 * captures outer variables, and InvalidOptionError for things that are not shippable functions.
 */
export function describeFunction(fn: Function, callsite: CallSite, kind = 'function'): FunctionDescriptor {
  if (typeof fn !== 'function') {
    throw new InvalidOptionError(`remote() expects a ${kind}, got ${fn === null ? 'null' : typeof fn}`, 'fn');
  }
  const source = Function.prototype.toString.call(fn);
  const name = fn.name || anonymousName(callsite);
  if (/\{\s*\[native code\]\s*\}$/.test(source)) {
    throw new InvalidOptionError(
      `remote() cannot ship ${name}: it is a built-in or bound function, which has no source. ` +
        'Wrap it in a function that makes the call in its body, e.g. remote((x: number) => Math.sqrt(x)).',
      'fn',
    );
  }
  const freeVariables = findFreeVariables(source, name);
  if (freeVariables.length === 0) {
    return { kind: 'source', id: hashId(`source\0${source}`), name, source };
  }
  const { moduleUrl } = callsite;
  if (moduleUrl !== undefined && !isEntryScript(moduleUrl)) {
    const site = `${callsite.line}:${callsite.column}`;
    const ordinal = callsiteOrdinals.get(`${moduleUrl}#${site}`) ?? 0;
    callsiteOrdinals.set(`${moduleUrl}#${site}`, ordinal + 1);
    const key = `${site}#${ordinal}`;
    const where = `${moduleUrl.slice(moduleUrl.lastIndexOf('/') + 1)}:${callsite.sourceLine}`;
    return { kind: 'module', id: hashId(`module\0${moduleUrl}\0${key}\0${source}`), name, moduleUrl, callsite: key, where };
  }
  const list = freeVariables.map((v) => `'${v}'`).join(', ');
  throw new CapturedVariableError(
    `remote() cannot ship ${kind} ${name}: it uses ${list} from the scope where it is defined, ` +
      `and that scope does not exist in a worker. Pass ${freeVariables.length > 1 ? 'them as arguments' : 'it as an argument'} ` +
      `instead, or call remote() at the top level of a module that is not the entry script (the module ` +
      `that defines the ${kind}, exporting the result), so that workers can import that module.`,
    freeVariables,
  );
}

/** Names a function's source uses but does not define, other than worker globals. */
export function findFreeVariables(source: string, name = 'anonymous'): string[] {
  const program = parseFunctionSource(source, name);
  const scopes = analyze(program as unknown as Parameters<typeof analyze>[0], {
    ecmaVersion: 2022,
    sourceType: 'script',
  });
  const free = new Set<string>();
  for (const reference of scopes.globalScope?.through ?? []) {
    const identifier = reference.identifier.name;
    if (!WORKER_GLOBALS.has(identifier)) free.add(identifier);
  }
  return [...free];
}

/** Parses a function's source as an expression; method shorthand (`m() {}`) is wrapped in an object. */
function parseFunctionSource(source: string, name: string): AcornNode {
  const attempts = [`(${source});`, `({${source}});`];
  let firstError: unknown;
  for (const text of attempts) {
    try {
      return parse(text, { ecmaVersion: 'latest', sourceType: 'script', ranges: true });
    } catch (error) {
      firstError ??= error;
    }
  }
  throw new InvalidOptionError(
    `remote() could not parse the source of ${name} (${(firstError as Error).message}). ` +
      'Ship it from a module instead: call remote() at the top level of a module that is not the entry script.',
    'fn',
  );
}

/** Compiles shipped source in the current (worker) global scope. */
export function compileSource(source: string, name = 'anonymous'): Function {
  // Stack frames of the shipped code then read "miniray:name" rather than "eval at compileSource".
  const sourceUrl = `\n//# sourceURL=miniray:${name.replace(/[^\w.-]+/g, '_')}`;
  let compiled: unknown;
  try {
    compiled = new Function(`"use strict"; return (${source});${sourceUrl}`)();
  } catch (error) {
    // Method shorthand (`m() {}`) only parses inside an object literal.
    if (!(error instanceof SyntaxError)) throw error;
    const holder = new Function(`"use strict"; return ({${source}});${sourceUrl}`)() as Record<string, unknown>;
    compiled = Object.values(holder)[0];
  }
  if (typeof compiled !== 'function') throw new TypeError('shipped source is not a function');
  return compiled as Function;
}

// Compiled factories of function values that arrived, by source: each decode calls the factory, so
// it gets a function object of its own without compiling again.
const factories = new Map<string, () => Function>();
const MAX_FACTORIES = 512;

/** A function value that travelled as its source (see the codec's function extension). */
export function compileShipped(source: string, name: string): Function {
  let factory = factories.get(source);
  if (factory === undefined) {
    factory = factoryOf(source, name);
    if (factories.size >= MAX_FACTORIES) factories.clear();
    factories.set(source, factory);
  }
  return factory();
}

// esbuild (and so tsx) may wrap functions in `__name(fn, "name")`; a value can arrive in a thread
// that has no such global (the driver), so the compiled code gets its own.
const nameHelper = (fn: Function, value: string): Function => Object.defineProperty(fn, 'name', { value, configurable: true });

function factoryOf(source: string, name: string): () => Function {
  const sourceUrl = `\n//# sourceURL=miniray:${name.replace(/[^\w.-]+/g, '_')}`;
  let compiled: (helper: typeof nameHelper) => unknown;
  let shorthand = false;
  try {
    compiled = new Function('__name', `"use strict"; return (${source});${sourceUrl}`) as typeof compiled;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Method shorthand (`m() {}`) only parses inside an object literal.
    compiled = new Function('__name', `"use strict"; return ({${source}});${sourceUrl}`) as typeof compiled;
    shorthand = true;
  }
  return () => {
    const result = compiled(nameHelper);
    const fn = shorthand ? Object.values(result as Record<string, unknown>)[0] : result;
    if (typeof fn !== 'function') throw new TypeError('shipped source is not a function');
    return fn;
  };
}
