/** The Jobs API on the head: the job manager, its REST routes, and working-dir packages. */
export { JobError } from './errors.js';
export { JobManager, SUBMISSION_ID, TERMINAL_STATUSES, isTerminal, type JobGcs, type JobManagerOptions, type JobStatus, type LogChunk, type SubmitRequest } from './manager.js';
export { PACKAGE_SCHEME, PackageStore, packDirectory } from './package.js';
export { jobRoutes } from './routes.js';
