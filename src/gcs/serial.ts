/**
 * Runs read-modify-write steps of one table one at a time: the store is async, so two requests
 * that both check a name and then take it would otherwise both succeed.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** A name's key in a table of names by namespace (actors', placement groups'). */
export const nameKey = (namespace: string, name: string): string => JSON.stringify([namespace, name]);
