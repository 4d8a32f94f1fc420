/**
 * Types shared by the HTTP layer, all derived from the generated OpenAPI types: handlers never
 * declare request or response shapes of their own.
 */
import type { Request, Response } from 'express';
import type { Em } from '../persistence/orm.ts';
import type { Logger } from 'pino';
import type { components, operations } from '../generated/api.ts';
import type { Caller } from '../persistence/entities.ts';

export type Schemas = components['schemas'];
export type OperationId = keyof operations;

type JsonContent<T> = T extends { content: { 'application/json': infer B } } ? B : never;

/** A form body as the multipart parser leaves it: the text fields; the file part is stored apart. */
type FormContent<T> = T extends { content: { 'multipart/form-data': infer B } } ? Partial<B> : never;

type BodyContent<T> = JsonContent<T> | FormContent<T>;

/**
 * The request body of an operation as the validator lets it through: the JSON body, or the text
 * fields of a form; `undefined` too where the body is optional, and for operations without one.
 */
export type RequestBody<Op extends OperationId> = operations[Op] extends { requestBody: infer RB }
  ? BodyContent<RB>
  : operations[Op] extends { requestBody?: infer RB }
    ? BodyContent<NonNullable<RB>> | undefined
    : undefined;

/** Path parameters of an operation, with the types of the spec. */
export type PathParams<Op extends OperationId> = operations[Op]['parameters'] extends { path: infer P } ? P : Record<string, never>;

/**
 * Path parameters as a handler receives them: the validator checked them against the spec, but
 * they stay the strings of the path (an integer parameter is still to be converted).
 */
export type RawPathParams<Op extends OperationId> = { [K in keyof PathParams<Op>]: string };

/** Query parameters of an operation (after the validator coerced and defaulted them). */
export type QueryParams<Op extends OperationId> = operations[Op]['parameters'] extends { query?: infer Q }
  ? [NonNullable<Q>] extends [never]
    ? Record<string, never>
    : NonNullable<Q>
  : Record<string, never>;

/** Documented statuses of an operation. */
export type StatusOf<Op extends OperationId> = keyof operations[Op]['responses'] & number;

/** JSON body of a documented response. */
export type ResponseBody<Op extends OperationId, S extends StatusOf<Op>> = JsonContent<operations[Op]['responses'][S]>;

/** What every handler receives besides req/res. */
export interface RequestContext {
  em: Em;
  /** The authenticated caller; handlers of public operations never read it. */
  user: Caller;
  log: Logger;
  requestId: string;
}

/** The request of one operation, as the validator passed it: typed path parameters, query and body. */
export type OperationRequest<Op extends OperationId> = Request<RawPathParams<Op>, unknown, RequestBody<Op>, QueryParams<Op>>;

/** The handler of one operation. */
export type Handler<Op extends OperationId> = (req: OperationRequest<Op>, res: Response, ctx: RequestContext) => Promise<void>;

/**
 * One handler per operationId, each typed by its own operation: the compiler refuses a table that
 * misses an operation, and a handler that reads a parameter or field its operation does not have.
 */
export type HandlerTable = { [Op in OperationId]: Handler<Op> };

/** What the dispatcher calls: the handler of `operationId` on a request the validator has checked. */
export type CheckedHandler = (req: Request, res: Response, ctx: RequestContext) => Promise<void>;

/**
 * The handler of an operation, for the dispatcher. The one place where a checked request becomes
 * its operation's request: the validator matched `operationId` and checked the request against it.
 */
function handlerFor<Op extends OperationId>(table: HandlerTable, operationId: Op): CheckedHandler {
  const handler: Handler<Op> = table[operationId];
  return (req, res, ctx) => handler(req as OperationRequest<Op>, res, ctx);
}

/** Every handler of the table for the dispatcher, by operationId (built once per app). */
export function checkedHandlers(table: HandlerTable): ReadonlyMap<string, CheckedHandler> {
  const operationIds = Object.keys(table) as OperationId[]; // the table's keys are exactly the operationIds
  return new Map(operationIds.map((operationId) => [operationId, handlerFor(table, operationId)]));
}

/** Sends a documented JSON response, type-checked against the spec. */
export function sendJson<Op extends OperationId, S extends StatusOf<Op>>(
  res: Response,
  _op: Op,
  status: S,
  body: ResponseBody<Op, S>,
): void {
  res.status(status).json(body);
}
