/**
 * GGUF v2/v3 (llama.cpp): magic `GGUF`, u32 version, u64 tensor count, u64 key-value count, the
 * key-values, then the tensor infos (name, dims, ggml type, offset). All little-endian; strings
 * are a u64 length then UTF-8. Every claimed length and count is checked against what is left
 * of the file before anything is read or allocated.
 */
import { Cursor, jsonInteger, MalformedHeaderError, safeCount, type ByteSource } from './source.ts';
import type { InspectionFindings } from './types.ts';

/** ggml tensor types by id. */
const GGML_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS',
  24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** `general.file_type` values (llama.cpp's llama_ftype) → quantization name. */
const FILE_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K',
  11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K',
  19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S',
  27: 'IQ3_M', 28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE',
};

const enum T { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }
const FIXED_WIDTH: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Arrays longer than this are left out of `metadata` (the spec's ArtifactInspection); so are very long strings. */
const MAX_ARRAY_ITEMS = 64;
const MAX_STRING_CHARS = 64 * 1024;
const MAX_ARRAY_DEPTH = 4;
const MAX_DIMS = 8;

export function looksLikeGguf(head: Buffer): boolean {
  return head.length >= 4 && head.toString('latin1', 0, 4) === 'GGUF';
}

export async function inspectGguf(src: ByteSource): Promise<InspectionFindings> {
  const c = new Cursor(src);
  await c.fill(24, 'the GGUF header');
  c.skip(4);
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new MalformedHeaderError(`GGUF version ${version} is not supported (only 2 and 3)`);
  const tensorCount = c.u64();
  const kvCount = c.u64();
  // Each key-value takes at least 13 bytes (key length, type, 1-byte value), each tensor info 24.
  if (kvCount * 13n > BigInt(c.remaining)) throw new MalformedHeaderError(`the header claims ${kvCount} key-values, more than the file can hold`);
  if (tensorCount * 24n > BigInt(c.remaining)) throw new MalformedHeaderError(`the header claims ${tensorCount} tensors, more than the file can hold`);

  const metadata: Record<string, unknown> = {};
  for (let i = 0n; i < kvCount; i++) {
    const key = await readString(c, 'a key');
    await c.fill(4, 'a value type');
    const type = c.u32();
    const value = await readValue(c, type, key, 0);
    if (value !== OMITTED && key !== null) metadata[key] = value;
  }

  const dtypes: Record<string, number> = {};
  let parameters = 0n;
  for (let i = 0n; i < tensorCount; i++) {
    await readString(c, 'a tensor name');
    await c.fill(4, 'a tensor info');
    const dims = c.u32();
    if (dims > MAX_DIMS) throw new MalformedHeaderError(`a tensor claims ${dims} dimensions`);
    await c.fill(dims * 8 + 12, 'a tensor info');
    let elements = 1n;
    for (let d = 0; d < dims; d++) elements *= c.u64();
    const type = c.u32();
    const offset = c.u64();
    if (offset > BigInt(src.size)) throw new MalformedHeaderError(`a tensor's data offset ${offset} is past the end of the file`);
    parameters += elements;
    const name = GGML_TYPES[type] ?? `type_${type}`;
    dtypes[name] = (dtypes[name] ?? 0) + 1;
  }

  const architecture = typeof metadata['general.architecture'] === 'string' ? (metadata['general.architecture'] as string) : null;
  const fileType = metadata['general.file_type'];
  return {
    format: 'gguf',
    parameter_count: safeCount(parameters, 'the parameter count'),
    tensor_count: Number(tensorCount),
    dtypes,
    architecture,
    quantization: typeof fileType === 'number' ? (FILE_TYPES[fileType] ?? `file_type_${fileType}`) : null,
    metadata: { 'gguf.version': version, ...metadata },
  };
}

const OMITTED = Symbol('omitted');

/** A GGUF string; null when it is too long to keep (it is skipped, not read). */
async function readString(c: Cursor, what: string): Promise<string | null> {
  await c.fill(8, what);
  const length = c.u64();
  if (length > BigInt(c.remaining)) throw new MalformedHeaderError(`${what} claims ${length} bytes, but only ${c.remaining} are left in the file`);
  const n = Number(length);
  if (n > MAX_STRING_CHARS) {
    c.skip(n, what);
    return null;
  }
  await c.fill(n, what);
  return c.take(n).toString('utf8');
}

async function readValue(c: Cursor, type: number, key: string | null, depth: number): Promise<unknown> {
  if (type === T.STRING) {
    const s = await readString(c, `the value of ${key}`);
    return s === null ? OMITTED : s;
  }
  if (type === T.ARRAY) {
    if (depth >= MAX_ARRAY_DEPTH) throw new MalformedHeaderError(`the value of ${key} nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
    await c.fill(12, `the array ${key}`);
    const itemType = c.u32();
    const count = c.u64();
    const width = FIXED_WIDTH[itemType];
    const minItem = width ?? (itemType === T.STRING ? 8 : 12);
    if (count * BigInt(minItem) > BigInt(c.remaining)) throw new MalformedHeaderError(`the array ${key} claims ${count} items, more than the file can hold`);
    const n = Number(count);
    if (n > MAX_ARRAY_ITEMS) {
      if (width !== undefined) c.skip(n * width, `the array ${key}`);
      else for (let i = 0; i < n; i++) await readValue(c, itemType, key, depth + 1);
      return OMITTED;
    }
    const items: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const v = await readValue(c, itemType, key, depth + 1);
      items.push(v === OMITTED ? null : v);
    }
    return items;
  }
  const width = FIXED_WIDTH[type];
  if (width === undefined) throw new MalformedHeaderError(`the value of ${key} has unknown type ${type}`);
  await c.fill(width, `the value of ${key}`);
  switch (type) {
    case T.U8: return c.u8();
    case T.I8: return (c.u8() << 24) >> 24;
    case T.U16: return c.u16();
    case T.I16: return (c.u16() << 16) >> 16;
    case T.U32: return c.u32();
    case T.I32: return c.i32();
    case T.F32: return finite(c.f32());
    case T.BOOL: return c.u8() !== 0;
    case T.U64: return jsonInteger(c.u64());
    case T.I64: return jsonInteger(c.i64());
    default: return finite(c.f64());
  }
}

const finite = (v: number) => (Number.isFinite(v) ? v : null);
