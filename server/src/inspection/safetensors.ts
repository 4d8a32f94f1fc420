/**
 * safetensors: an 8-byte little-endian header length, then that many bytes of JSON
 * (`{"<tensor>": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
 * then the tensor bytes. Only the header is read.
 */
import { MalformedHeaderError, InspectionLimitError, type ByteSource } from './source.ts';
import type { InspectionFindings } from './types.ts';

/** Bytes per element of the dtypes whose size is fixed (sub-byte and unknown ones are not checked). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8, C64: 8,
};

/** safetensors headers are a few levels deep; deeper JSON is a parser attack, not a model. */
const MAX_DEPTH = 16;

/** The header starts `{"` (or is `{}`): one random file in 65,536 looks like that, not one in 256. */
export function looksLikeSafetensors(head: Buffer): boolean {
  if (head.length < 10 || head[8] !== 0x7b /* { */ || (head[9] !== 0x22 /* " */ && head[9] !== 0x7d) /* } */) return false;
  return head.readBigUInt64LE(0) >= 2n;
}

export async function inspectSafetensors(src: ByteSource, maxBytes: number): Promise<InspectionFindings> {
  const head = await src.read(0, 8);
  if (head.length < 8) throw new MalformedHeaderError('the file ends inside the header length');
  const declared = head.readBigUInt64LE(0);
  if (declared > BigInt(src.size - 8)) {
    throw new MalformedHeaderError(`the header length ${declared} is larger than the rest of the file (${src.size - 8} bytes)`);
  }
  const length = Number(declared);
  if (length > maxBytes) throw new InspectionLimitError(maxBytes, `the ${length}-byte header`);
  const json = await src.read(8, length);
  checkNesting(json);
  let header: unknown;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new MalformedHeaderError(`the header is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new MalformedHeaderError('the header is not a JSON object');

  const dataSize = src.size - 8 - length;
  const dtypes: Record<string, number> = {};
  let parameters = 0n;
  let tensors = 0;
  let metadata: Record<string, unknown> | null = null;
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedHeaderError('__metadata__ is not an object');
      metadata = value as Record<string, unknown>;
      continue;
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const label = `tensor ${JSON.stringify(name.slice(0, 200))}`;
    if (typeof t !== 'object' || t === null || typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets)) {
      throw new MalformedHeaderError(`${label} lacks dtype, shape or data_offsets`);
    }
    let elements = 1n;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || (d as number) < 0) throw new MalformedHeaderError(`${label} has an invalid dimension ${JSON.stringify(d)}`);
      elements *= BigInt(d as number);
    }
    const [begin, end] = t.data_offsets as unknown[];
    if (t.data_offsets.length !== 2 || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
      throw new MalformedHeaderError(`${label} has invalid data_offsets`);
    }
    if ((end as number) > dataSize) throw new MalformedHeaderError(`${label} ends at byte ${end as number} of the data, which has only ${dataSize} bytes`);
    const width = DTYPE_BYTES[t.dtype];
    if (width !== undefined && elements * BigInt(width) !== BigInt((end as number) - (begin as number))) {
      throw new MalformedHeaderError(`${label}: shape [${t.shape.join(', ')}] of ${t.dtype} needs ${elements * BigInt(width)} bytes, data_offsets span ${(end as number) - (begin as number)}`);
    }
    parameters += elements;
    tensors++;
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  }
  return {
    format: 'safetensors',
    parameter_count: Number(parameters), // bounded by the file size: every tensor's bytes were checked
    tensor_count: tensors,
    dtypes,
    metadata,
  };
}

/** Rejects JSON nested deeper than MAX_DEPTH before JSON.parse builds it (one pass, no allocation). */
function checkNesting(json: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_DEPTH) throw new MalformedHeaderError(`the header JSON is nested more than ${MAX_DEPTH} levels deep`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}
