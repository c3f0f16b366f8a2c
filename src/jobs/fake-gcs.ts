/** A stand-in for the GCS's KV and job table, for tests of the job manager and its routes. */
import type { JobEntry } from '../gcs/types.js';
import type { JobGcs } from './manager.js';

export class FakeJobGcs implements JobGcs {
  readonly kv = new Map<string, Uint8Array>();
  /** The job table listJobs answers with (a driver's row carries its submissionId). */
  jobs: (JobEntry & { readonly submissionId?: string })[] = [];

  private key(namespace: string, key: string): string {
    return `${namespace}\u0000${key}`;
  }

  async kvPut(namespace: string, key: string, value: Uint8Array, overwrite = true): Promise<boolean> {
    const k = this.key(namespace, key);
    const added = !this.kv.has(k);
    if (added || overwrite) this.kv.set(k, value);
    return added;
  }

  async kvGet(namespace: string, key: string): Promise<Uint8Array | null> {
    return this.kv.get(this.key(namespace, key)) ?? null;
  }

  async kvDel(namespace: string, key: string): Promise<boolean> {
    return this.kv.delete(this.key(namespace, key));
  }

  async kvKeys(namespace: string, prefix = ''): Promise<readonly string[]> {
    const start = this.key(namespace, prefix);
    return [...this.kv.keys()].filter((k) => k.startsWith(start)).map((k) => k.slice(namespace.length + 1));
  }

  async listJobs(): Promise<readonly JobEntry[]> {
    return this.jobs;
  }

  /** The record of `submissionId` as the KV holds it. */
  record(submissionId: string): unknown {
    const bytes = this.kv.get(this.key('job_submission', submissionId));
    return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown);
  }
}
