/**
 * A screen in front of the validator for input no schema can express but the database would
 * choke on (NUL characters, lone UTF-16 surrogates) or that would overflow recursive checks (very
 * deep JSON).
 */
import type { NextFunction, Request, Response } from 'express';
import { errors } from '../errors.ts';
import { hasLoneSurrogate } from '../services/input-rules.ts';

/** JSON bodies nest at most this deep (a deeper one is refused before anything recurses into it). */
const MAX_JSON_DEPTH = 64;

/**
 * No database text column (nor PostgreSQL jsonb) can hold U+0000: a NUL anywhere in the
 * request — a path segment, a query value, a JSON string or key — is refused here, before it
 * can reach a query and fail there as a 500. In the path it names nothing (404); elsewhere it
 * is invalid input (422). JSON nested deeper than MAX_JSON_DEPTH is refused too (422): later
 * steps (validation, size checks, the driver) recurse and would overflow the stack.
 */
export function screenRequest(req: Request, _res: Response, next: NextFunction): void {
  const [path, query = ''] = req.originalUrl.split(/\?(.*)/s, 2) as [string, string?];
  if (/%00/i.test(path)) return next(errors.notFound('No such resource.'));
  if (/%00/i.test(query)) {
    const names = [...new URLSearchParams(query)].filter(([k, v]) => k.includes('\0') || v.includes('\0')).map(([k]) => k);
    const fieldErrors = [...new Set(names)].map((name) => ({ loc: ['query', name], msg: 'must not contain the NUL character', type: 'pattern' }));
    return next(errors.validation('The request is invalid: a query parameter contains the NUL character.', fieldErrors));
  }
  const problem = jsonProblem(req.body);
  if (problem) {
    const loc = ['body', ...problem.loc];
    return next(errors.validation(`The request is invalid: ${loc.join('.')} ${problem.msg}.`, [{ loc, msg: problem.msg, type: problem.type }]));
  }
  next();
}

/** A JSON `\\ud800` escape without its pair: valid JSON, but no UTF-8 text can hold it. */
const LONE_SURROGATE = 'must not contain a lone UTF-16 surrogate (a \\uD800–\\uDFFF escape without its pair)';

interface PathNode {
  key: string | number;
  parent: PathNode | null;
}

/** The first NUL (in a string or key) or too-deep spot in a parsed JSON value; iterative, linear. */
function jsonProblem(value: unknown): { loc: (string | number)[]; msg: string; type: string } | null {
  const locOf = (node: PathNode | null) => {
    const loc: (string | number)[] = [];
    for (let n = node; n; n = n.parent) loc.unshift(n.key);
    return loc;
  };
  const stack: [unknown, number, PathNode | null][] = [[value, 0, null]];
  while (stack.length > 0) {
    const [v, depth, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return { loc: locOf(at), msg: 'must not contain the NUL character', type: 'pattern' };
      if (hasLoneSurrogate(v)) return { loc: locOf(at), msg: LONE_SURROGATE, type: 'pattern' };
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH) return { loc: locOf(at), msg: `nests deeper than ${MAX_JSON_DEPTH} levels`, type: 'maxDepth' };
      if (Array.isArray(v)) {
        v.forEach((item, i) => stack.push([item, depth + 1, { key: i, parent: at }]));
      } else {
        for (const [k, item] of Object.entries(v)) {
          if (k.includes('\0')) return { loc: locOf({ key: k, parent: at }), msg: 'must not contain the NUL character', type: 'pattern' };
          if (hasLoneSurrogate(k)) return { loc: locOf({ key: k, parent: at }), msg: LONE_SURROGATE, type: 'pattern' };
          stack.push([item, depth + 1, { key: k, parent: at }]);
        }
      }
    }
  }
  return null;
}
