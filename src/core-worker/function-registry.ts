/**
 * Functions created by remote() at the top level of a module, by module URL and call site. When a
 * worker imports that module, the same remote() calls run again and fill this registry, which is
 * how the worker finds the function a task names. Kept on globalThis so that every copy of the
 * package loaded in a thread shares it.
 */
const REGISTRY = Symbol.for('miniray.moduleFunctions');

type Registry = Map<string, Function>;

function registry(): Registry {
  const holder = globalThis as { [REGISTRY]?: Registry };
  return (holder[REGISTRY] ??= new Map());
}

export function registerModuleFunction(moduleUrl: string, callsite: string, fn: Function): void {
  registry().set(`${moduleUrl}#${callsite}`, fn);
}

export function lookupModuleFunction(moduleUrl: string, callsite: string): Function | undefined {
  return registry().get(`${moduleUrl}#${callsite}`);
}
