/**
 * RFC 9457 problem details: the one error type routes throw, and its JSON body.
 *
 * A route throws `new HttpProblem(status, title, detail)`; the error plugin
 * (`plugins/errors.ts`) turns it (and every other error) into an `application/problem+json` reply.
 */

/** An RFC 9457 problem document (`type`, `title`, `status`, `detail`, `instance`, extensions). */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Base of the `type` URIs of this API's problems; `type` = base + slug. */
export const PROBLEM_BASE = 'https://normgen.dev/problems/';

/** An HTTP error with a status (400–599), a short title, a human detail and a type slug. */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    public readonly statusCode: number,
    public readonly title: string,
    detail: string,
    public readonly slug: string = title.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
    public readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

/**
 * Thrown by `infer` for an async job's validation pass (issue 28): the request got through every check of its
 * route and would now run the model. The error handler answers it 204 with no body; the job is then accepted.
 */
export class DryRunComplete extends Error {
  override name = 'DryRunComplete';
}
