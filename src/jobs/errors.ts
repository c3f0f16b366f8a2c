import { MinirayError } from '../errors/index.js';

/**
 * What a Jobs API request got wrong: `status` is the HTTP status the head answers with (400 a
 * request that cannot be done as asked, 404 an unknown submission ID or package, 413 too big, 415 not sent as bytes), and
 * the message says what to change.
 */
export class JobError extends MinirayError {
  static override readonly errorName = 'JobError';
  readonly status: 400 | 404 | 413 | 415;

  constructor(message: string, status: 400 | 404 | 413 | 415, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}
