/**
 * Ray's Jobs REST API (python/ray/dashboard/modules/job/job_head.py), with its JSON field names in
 * camelCase, as a fastify plugin for the head's dashboard server (which checks the cluster token
 * before any of these run):
 *
 *   POST   /api/jobs/               {entrypoint, submissionId?, runtimeEnv?, metadata?, entrypointNumCpus?} -> {submissionId}
 *   GET    /api/jobs/               -> JobSubmissionRecord[]
 *   GET    /api/jobs/:id            -> JobSubmissionRecord
 *   GET    /api/jobs/:id/logs       ?offset=N -> {logs, nextOffset, size}
 *   POST   /api/jobs/:id/stop       -> {stopped}
 *   DELETE /api/jobs/:id            -> {deleted}
 *   PUT    /api/packages/:sha256    (application/octet-stream, a tar.gz) -> {sha256}
 *   GET    /api/packages/:sha256    -> {exists: true}, or 404
 *
 * Bodies are checked against JSON schemas (a wrong one is a 400 that names the field), unknown IDs
 * are 404, and every error is JSON {error, message}.
 */
import type { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { JobError } from './errors.js';
import { SUBMISSION_ID, type JobManager, type SubmitRequest } from './manager.js';

/** A submit body is a command line and a few strings: far below this. */
const SUBMIT_BODY_LIMIT = 1024 * 1024;

const SUBMIT_FIELDS = ['entrypoint', 'submissionId', 'runtimeEnv', 'metadata', 'entrypointNumCpus'] as const;
const RUNTIME_ENV_FIELDS = ['envVars', 'workingDir'] as const;

const stringMap = (maxProperties: number) => ({
  type: 'object',
  maxProperties,
  additionalProperties: { type: 'string', maxLength: 65_536 },
});

// propertyNames rather than additionalProperties: false, which fastify's Ajv (removeAdditional)
// would drop in silence: a misspelt field (Ray's snake_case submission_id) must be an error.
const submitSchema = {
  type: 'object',
  required: ['entrypoint'],
  propertyNames: { enum: SUBMIT_FIELDS },
  properties: {
    entrypoint: { type: 'string', minLength: 1, maxLength: 65_536 },
    submissionId: { type: 'string', pattern: SUBMISSION_ID.source },
    runtimeEnv: {
      type: 'object',
      propertyNames: { enum: RUNTIME_ENV_FIELDS },
      properties: { envVars: stringMap(1000), workingDir: { type: 'string', minLength: 1, maxLength: 4096 } },
    },
    metadata: stringMap(100),
    entrypointNumCpus: { type: 'number', minimum: 0, maximum: 1_000_000 },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
const hashParams = { type: 'object', required: ['sha256'], properties: { sha256: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
const logsQuery = { type: 'object', properties: { offset: { type: 'integer', minimum: 0 } } } as const;

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

/** What a failed fastify schema check says, in words that name the field and what it should be. */
export function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0];
  if (first === undefined) return error.message;
  const where = `${error.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.')}`;
  // Ajv names a property that propertyNames refused on the error itself, or in its params.
  const unknownField = [first, ...(error.validation ?? [])]
    .map((e) => (e as { propertyName?: unknown }).propertyName ?? (e.params as Record<string, unknown>)['propertyName'])
    .find((name): name is string => typeof name === 'string');
  if (unknownField !== undefined) {
    const known = where.endsWith('.runtimeEnv') ? RUNTIME_ENV_FIELDS : SUBMIT_FIELDS;
    return `${where} has an unknown field '${unknownField}': the fields are ${known.join(', ')} (Ray's names, in camelCase)`;
  }
  if (first.keyword === 'pattern' && where.endsWith('.submissionId')) {
    return `${where} must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit`;
  }
  return `${where} ${first.message ?? 'is not valid'}`;
}

function sendError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof JobError) return reply.code(error.status).send({ error: error.name, message: error.message });
  const fastifyError = error as FastifyError;
  if (fastifyError.validation !== undefined) return reply.code(400).send({ error: 'Bad Request', message: describeValidation(fastifyError) });
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ error: fastifyError.code ?? 'Bad Request', message: error.message });
  request.log.error(error);
  return reply.code(500).send({ error: 'Internal Server Error', message: `the head failed to answer: ${error.message} (its log has more)` });
}

/** The Jobs API routes over `manager`, as a fastify plugin (register it without a prefix). */
export function jobRoutes(manager: JobManager): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.setErrorHandler(sendError);
    // Packages stream to disk as they arrive, checked and size-limited by the PackageStore.
    app.addContentTypeParser(['application/octet-stream', 'application/gzip'], (_request, payload, done) => done(null, payload));

    const notFound = (id: string) => new JobError(`there is no job '${id}' (\`miniray job list\` lists them)`, 404);

    for (const url of ['/api/jobs/', '/api/jobs']) {
      app.post<{ Body: SubmitRequest }>(url, { schema: { body: submitSchema }, bodyLimit: SUBMIT_BODY_LIMIT }, async (request) => ({
        submissionId: await manager.submit(request.body),
      }));
      app.get(url, async () => manager.list());
    }

    app.get('/api/jobs/:id', { schema: { params: idParams } }, async (request: IdRequest) => {
      const record = await manager.get(request.params.id);
      if (record === undefined) throw notFound(request.params.id);
      return record;
    });

    app.get<{ Params: { id: string }; Querystring: { offset?: number } }>(
      '/api/jobs/:id/logs',
      { schema: { params: idParams, querystring: logsQuery } },
      async (request) => manager.logs(request.params.id, request.query.offset ?? 0),
    );

    app.post('/api/jobs/:id/stop', { schema: { params: idParams } }, async (request: IdRequest) => ({ stopped: await manager.stop(request.params.id) }));

    app.delete('/api/jobs/:id', { schema: { params: idParams } }, async (request: IdRequest) => ({ deleted: await manager.delete(request.params.id) }));

    app.put<{ Params: { sha256: string } }>('/api/packages/:sha256', { schema: { params: hashParams } }, async (request, reply) => {
      const body = request.body;
      if (body === undefined || body === null || typeof (body as Readable).pipe !== 'function') {
        throw new JobError("a package is uploaded as its bytes, with Content-Type: application/octet-stream", 415);
      }
      const length = Number(request.headers['content-length']);
      await manager.packages.put(request.params.sha256, body as Readable, Number.isFinite(length) ? length : undefined);
      return reply.code(201).send({ sha256: request.params.sha256 });
    });

    app.get<{ Params: { sha256: string } }>('/api/packages/:sha256', { schema: { params: hashParams } }, async (request) => {
      if (!(await manager.packages.has(request.params.sha256))) throw new JobError(`there is no package ${request.params.sha256} on the head`, 404);
      return { exists: true };
    });
  };
}
