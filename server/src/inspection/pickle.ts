/**
 * Pickle (protocols 0–5) by opcode scan: walks the opcode stream, skipping every argument by its
 * declared length, and records the globals the pickle would import (GLOBAL, INST, STACK_GLOBAL).
 * Nothing is ever unpickled or executed. Loading any pickle can run code; the warnings say so,
 * and name the imports that are known ways to run commands or code.
 */
import { Cursor, InspectionLimitError, MalformedHeaderError, type ByteSource } from './source.ts';
import type { Inspection } from './types.ts';

/** How an opcode's argument is laid out. */
type Arg =
  | 0 // none
  | { fixed: number }
  | { length: 1 | 4 | 8 } // little-endian length prefix, then that many bytes
  | 'line' // up to and including '\n'
  | 'lines2'; // two lines (module, name)

const A0 = 0 as const;
const OPCODES: Record<number, Arg> = {};
const op = (ch: string | number, arg: Arg) => (OPCODES[typeof ch === 'number' ? ch : ch.charCodeAt(0)] = arg);
for (const ch of ['(', '.', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', 'e', 'l', 'o', 's', 't', 'u', '}', ')', ']']) op(ch, A0);
for (const ch of ['F', 'I', 'L', 'P', 'S', 'V', 'g', 'p']) op(ch, 'line');
op('c', 'lines2');
op('i', 'lines2');
op('J', { fixed: 4 });
op('K', { fixed: 1 });
op('M', { fixed: 2 });
op('G', { fixed: 8 });
op('h', { fixed: 1 });
op('j', { fixed: 4 });
op('q', { fixed: 1 });
op('r', { fixed: 4 });
op('T', { length: 4 });
op('U', { length: 1 });
op('X', { length: 4 });
op('B', { length: 4 });
op('C', { length: 1 });
// protocol 2
op(0x80, { fixed: 1 });
for (const b of [0x81, 0x85, 0x86, 0x87, 0x88, 0x89]) op(b, A0);
op(0x82, { fixed: 1 });
op(0x83, { fixed: 2 });
op(0x84, { fixed: 4 });
op(0x8a, { length: 1 });
op(0x8b, { length: 4 });
// protocol 4
op(0x8c, { length: 1 });
op(0x8d, { length: 8 });
op(0x8e, { length: 8 });
for (const b of [0x8f, 0x90, 0x91, 0x92, 0x93, 0x94]) op(b, A0);
op(0x95, { fixed: 8 });
// protocol 5
op(0x96, { length: 8 });
op(0x97, A0);
op(0x98, A0);

const STOP = 0x2e;
const PROTO = 0x80;
const STACK_GLOBAL = 0x93;
const MEMOIZE = 0x94;
const STRING_OPS = new Set([0x8c /* SHORT_BINUNICODE */, 0x58 /* BINUNICODE */, 0x8d /* BINUNICODE8 */, 0x55 /* SHORT_BINSTRING */, 0x54 /* BINSTRING */]);
const MAX_LINE = 4096;
const MAX_GLOBALS = 1000;
/** Torch's legacy format is several pickles back to back; look at no more than this many. */
const MAX_PICKLES = 5;

/** Imports that run commands or arbitrary code when a pickle is loaded. */
const DANGEROUS_MODULES = new Set([
  'os', 'posix', 'nt', 'subprocess', 'runpy', 'pty', 'commands', 'ctypes', 'webbrowser', 'importlib', 'socket',
  'shutil', 'code', 'codeop', 'multiprocessing', 'asyncio', 'pdb', 'bdb', 'timeit', 'sys', 'platform', 'marshal',
]);
const DANGEROUS_NAMES: Record<string, Set<string>> = {
  builtins: new Set(['eval', 'exec', 'execfile', 'compile', '__import__', 'open', 'getattr', 'setattr', 'delattr', 'globals', 'locals', 'breakpoint', 'input', 'vars']),
  pickle: new Set(['loads', 'load', 'Unpickler']),
  _pickle: new Set(['loads', 'load', 'Unpickler']),
  dill: new Set(['loads', 'load']),
  types: new Set(['CodeType', 'FunctionType']),
  operator: new Set(['attrgetter', 'methodcaller']),
  'torch.hub': new Set(['load', 'load_state_dict_from_url']),
};
DANGEROUS_NAMES.__builtin__ = DANGEROUS_NAMES.builtins!;
DANGEROUS_NAMES.cPickle = DANGEROUS_NAMES.pickle!;

export function isDangerousGlobal(name: string): boolean {
  const dot = name.lastIndexOf('.');
  const module = dot > 0 ? name.slice(0, dot) : name;
  const attr = dot > 0 ? name.slice(dot + 1) : '';
  const root = module.split('.')[0]!;
  if (DANGEROUS_MODULES.has(root)) return true;
  return DANGEROUS_NAMES[module]?.has(attr) ?? false;
}

/** A pickle starts with PROTO 2–5 (protocols 0 and 1 have no marker, and are not recognised). */
export function looksLikePickle(head: Buffer): boolean {
  return head.length >= 2 && head[0] === PROTO && head[1]! >= 2 && head[1]! <= 5;
}

export interface PickleScan {
  globals: string[];
  dangerous: string[];
  protocol: number | null;
}

/**
 * Scans the pickle(s) at the start of `src`. `maxOps` bounds the time on a budget of tiny opcodes;
 * arguments are skipped by length, never read, so a multi-gigabyte BINBYTES costs nothing.
 */
export async function scanPickle(src: ByteSource, maxOps = 50_000_000): Promise<PickleScan> {
  const c = new Cursor(src);
  const globals = new Set<string>();
  let protocol: number | null = null;
  // The last strings pushed and the memo, for STACK_GLOBAL (module and name are on the stack).
  let recent: (string | null)[] = [null, null];
  const memo = new Map<number, string | null>();
  let memoCount = 0;
  let ops = 0;
  let pickles = 0;
  const push = (s: string | null) => (recent = [recent[1]!, s]);
  const record = (name: string) => {
    if (globals.size < MAX_GLOBALS) globals.add(name);
  };

  for (;;) {
    if (!c.has(1)) {
      if (c.remaining === 0) {
        if (pickles === 0) throw new MalformedHeaderError('the pickle ends without a STOP opcode');
        break;
      }
      await c.fill(1);
    }
    if (++ops > maxOps) throw new InspectionLimitError(maxOps, 'the pickle opcodes');
    const at = c.position;
    const code = c.u8();
    if (code === STOP) {
      pickles++;
      if (pickles >= MAX_PICKLES || c.remaining < 2) break;
      await c.fillUpTo(2);
      const next = c.peek(2);
      if (next[0] !== PROTO || next[1]! < 2 || next[1]! > 5) break;
      continue;
    }
    const arg = OPCODES[code];
    if (arg === undefined) throw new MalformedHeaderError(`unknown pickle opcode 0x${code.toString(16)} at offset ${at}`);
    if (arg === A0) {
      if (code === STACK_GLOBAL) {
        const [module, name] = recent;
        record(module !== null && name !== null ? `${module}.${name}` : '<unknown>.<unknown>');
        push(null);
      } else if (code === MEMOIZE) memo.set(memoCount++, recent[1]!);
      else push(null);
      continue;
    }
    if (arg === 'line' || arg === 'lines2') {
      const first = await readLine(c);
      if (arg === 'lines2') {
        const second = await readLine(c);
        record(`${first}.${second}`);
      }
      if (code === 0x56 /* UNICODE */ || code === 0x53 /* STRING */) push(code === 0x53 ? stripQuotes(first) : first);
      else if (code === 0x67 /* GET */) push(memo.get(Number(first)) ?? null);
      else if (code === 0x70 /* PUT */) memo.set(Number(first), recent[1]!);
      else push(null);
      continue;
    }
    if ('fixed' in arg) {
      await c.fill(arg.fixed, 'a pickle opcode');
      const v = arg.fixed === 1 ? c.u8() : arg.fixed === 4 ? c.u32() : (c.skip(arg.fixed), 0);
      if (code === PROTO) protocol ??= v;
      else if (code === 0x68 || code === 0x6a) push(memo.get(v) ?? null); // BINGET, LONG_BINGET
      else if (code === 0x71 || code === 0x72) memo.set(v, recent[1]!); // BINPUT, LONG_BINPUT
      else if (code !== 0x95) push(null); // FRAME changes nothing on the stack
      continue;
    }
    await c.fill(arg.length, 'a pickle length');
    const length = arg.length === 1 ? c.u8() : arg.length === 4 ? (code === 0x54 ? c.i32() : c.u32()) : c.u64();
    if (typeof length === 'number' && length < 0) throw new MalformedHeaderError(`a negative pickle string length at offset ${at}`);
    if (BigInt(length) > BigInt(c.remaining)) {
      throw new MalformedHeaderError(`a pickle opcode at offset ${at} claims ${length} bytes, but only ${c.remaining} are left`);
    }
    const n = Number(length);
    if (STRING_OPS.has(code) && n <= MAX_LINE) {
      await c.fill(n, 'a pickle string');
      push(c.take(n).toString('utf8'));
    } else {
      c.skip(n, 'a pickle opcode');
      push(null);
    }
  }
  const list = [...globals].sort();
  return { globals: list, dangerous: list.filter(isDangerousGlobal), protocol };
}

/** Every pickle can run code when loaded; some name an import known to do so. */
export function pickleWarnings(scan: PickleScan): Inspection['warnings'] {
  return scan.dangerous.length > 0 ? ['pickle_code_execution', 'pickle_dangerous_global'] : ['pickle_code_execution'];
}

async function readLine(c: Cursor): Promise<string> {
  const available = await c.fillUpTo(MAX_LINE);
  const window = c.peek(available);
  const nl = window.indexOf(0x0a);
  if (nl < 0) throw new MalformedHeaderError(`a pickle text argument at offset ${c.position} has no end of line within ${MAX_LINE} bytes`);
  const line = window.toString('utf8', 0, nl);
  c.skip(nl + 1);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

const stripQuotes = (s: string) => (s.length >= 2 && (s[0] === "'" || s[0] === '"') ? s.slice(1, -1) : s);
