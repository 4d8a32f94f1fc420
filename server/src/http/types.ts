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

/** The JSON request body of an operation. */
export type RequestBody<Op extends OperationId> = operations[Op] extends { requestBody?: infer RB }
  ? JsonContent<NonNullable<RB>>
  : never;

/** Path parameters of an operation. */
export type PathParams<Op extends OperationId> = operations[Op]['parameters'] extends { path: infer P } ? P : never;

/** Query parameters of an operation (after the validator coerced and defaulted them). */
export type QueryParams<Op extends OperationId> = operations[Op]['parameters'] extends { query?: infer Q }
  ? NonNullable<Q>
  : never;

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

export type Handler = (req: Request, res: Response, ctx: RequestContext) => Promise<void>;

/** One handler per operationId: the compiler refuses a table that misses an operation. */
export type HandlerTable = { [Op in OperationId]: Handler };

/** Sends a documented JSON response, type-checked against the spec. */
export function sendJson<Op extends OperationId, S extends StatusOf<Op>>(
  res: Response,
  _op: Op,
  status: S,
  body: ResponseBody<Op, S>,
): void {
  res.status(status).json(body);
}
