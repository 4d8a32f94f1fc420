/**
 * Small, real weight files for inspection tests, written byte by byte from each format's layout
 * (safetensors, GGUF), encoded with protobufjs (ONNX, with a schema that also carries the fields
 * inspection skips: nodes and tensor payloads), as pickle opcodes, and zipped with yazl (PyTorch).
 */
import protobuf from 'protobufjs';
import yazl from 'yazl';

// ─── safetensors ────────────────────────────────────────────────────────────────────────

const WIDTH: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, U8: 1, I8: 1 };

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
}

export function safetensors(tensors: SafetensorsTensor[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * WIDTH[t.dtype]!;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return safetensorsRaw(JSON.stringify(header), offset);
}

/** A safetensors file with the given header text (padded to 8 bytes as the format does) and data size. */
export function safetensorsRaw(headerJson: string, dataBytes: number, declaredLength?: bigint): Buffer {
  let json = Buffer.from(headerJson);
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataBytes, 7)]);
}

// ─── GGUF ───────────────────────────────────────────────────────────────────────────────

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'u64'; value: bigint }
  | { type: 'string'; value: string }
  | { type: 'array'; items: 'string'; value: string[] }
  | { type: 'array'; items: 'i32'; value: number[] };

export interface GgufTensor {
  name: string;
  dims: bigint[];
  type: number;
}

const TYPE_ID = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10 } as const;

export class GgufWriter {
  private parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer) {
    this.parts.push(b);
    return this;
  }
  string(s: string) {
    const b = Buffer.from(s);
    return this.u64(BigInt(b.length)).raw(b);
  }
  value(v: GgufValue) {
    switch (v.type) {
      case 'u32': return this.u32(v.value);
      case 'i32': return this.i32(v.value);
      case 'f32': {
        const b = Buffer.alloc(4);
        b.writeFloatLE(v.value);
        return this.raw(b);
      }
      case 'bool': return this.raw(Buffer.from([v.value ? 1 : 0]));
      case 'u64': return this.u64(v.value);
      case 'string': return this.string(v.value);
      case 'array':
        this.u32(TYPE_ID[v.items]).u64(BigInt(v.value.length));
        for (const item of v.value) v.items === 'string' ? this.string(item as string) : this.i32(item as number);
        return this;
    }
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function gguf(opts: { version?: number; kv: [string, GgufValue][]; tensors: GgufTensor[]; dataBytes?: number }): Buffer {
  const w = new GgufWriter().raw(Buffer.from('GGUF')).u32(opts.version ?? 3).u64(BigInt(opts.tensors.length)).u64(BigInt(opts.kv.length));
  for (const [key, value] of opts.kv) w.string(key).u32(TYPE_ID[value.type]).value(value);
  let offset = 0n;
  for (const t of opts.tensors) {
    w.string(t.name).u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type).u64(offset);
    offset += 32n;
  }
  return Buffer.concat([w.bytes(), Buffer.alloc(opts.dataBytes ?? 64)]);
}

// ─── ONNX ───────────────────────────────────────────────────────────────────────────────

/** More of onnx.proto than the server declares: nodes and payloads must be skipped by it. */
const ONNX_SCHEMA = `
syntax = "proto3";
package onnx;
message AttributeProto { string name = 1; int64 i = 3; }
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; repeated AttributeProto attribute = 5; }
message TensorProto { repeated int64 dims = 1; int32 data_type = 2; repeated float float_data = 4; string name = 8; bytes raw_data = 9; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message GraphProto { repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message StringStringEntryProto { string key = 1; string value = 2; }
message ModelProto { int64 ir_version = 1; string producer_name = 2; string producer_version = 3; GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; repeated StringStringEntryProto metadata_props = 14; }
`;
const onnxRoot = protobuf.parse(ONNX_SCHEMA, { keepCase: true }).root;
const OnnxModel = onnxRoot.lookupType('onnx.ModelProto');

const valueInfo = (name: string, shape: (number | string)[]) => ({
  name,
  type: { tensor_type: { elem_type: 1, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
});

/** A two-layer MLP: Gemm(128→64) → Relu → Gemm(64→1), FLOAT weights in raw_data, one INT64 shape constant. */
export function onnxMlp(): Buffer {
  const weight = (name: string, dims: number[]) => ({ name, dims, data_type: 1, raw_data: Buffer.alloc(dims.reduce((a, b) => a * b, 1) * 4, 1) });
  const message = OnnxModel.fromObject({
    ir_version: 9,
    producer_name: 'pytorch',
    producer_version: '2.4.1',
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [{ key: 'author', value: 'ml-platform' }],
    graph: {
      name: 'main_graph',
      node: [
        { input: ['features', 'fc1.weight', 'fc1.bias'], output: ['h'], op_type: 'Gemm', name: 'fc1', attribute: [{ name: 'transB', i: 1 }] },
        { input: ['h'], output: ['r'], op_type: 'Relu', name: 'relu' },
        { input: ['r', 'fc2.weight', 'fc2.bias'], output: ['churn_probability'], op_type: 'Gemm', name: 'fc2' },
      ],
      initializer: [
        weight('fc1.weight', [64, 128]),
        weight('fc1.bias', [64]),
        weight('fc2.weight', [1, 64]),
        weight('fc2.bias', [1]),
        { name: 'shape', dims: [2], data_type: 7, raw_data: Buffer.alloc(16) },
      ],
      input: [valueInfo('features', ['batch', 128])],
      output: [valueInfo('churn_probability', ['batch', 1])],
    },
  });
  return Buffer.from(OnnxModel.encode(message).finish());
}

// ─── pickle ─────────────────────────────────────────────────────────────────────────────

const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const binunicode = (s: string) => Buffer.concat([Buffer.from([0x58]), u32le(Buffer.byteLength(s)), Buffer.from(s)]);
const shortBinunicode = (s: string) => Buffer.concat([Buffer.from([0x8c, Buffer.byteLength(s)]), Buffer.from(s)]);

/**
 * What `pickle.dumps(OrderedDict(weight=tensor))` of a PyTorch state dict looks like (protocol 2):
 * OrderedDict, torch._utils._rebuild_tensor_v2 and a persistent-id storage reference.
 */
export function torchStateDictPickle(): Buffer {
  return Buffer.concat([
    Buffer.from('\x80\x02', 'latin1'),
    Buffer.from('ccollections\nOrderedDict\nq\x00)Rq\x01(', 'latin1'),
    binunicode('weight'),
    Buffer.from('q\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03(', 'latin1'),
    Buffer.from('(', 'latin1'),
    binunicode('storage'),
    Buffer.from('ctorch\nFloatStorage\nq\x04', 'latin1'),
    binunicode('0'),
    binunicode('cpu'),
    Buffer.from('K\x04tq\x05QK\x00K\x02K\x02\x86q\x06K\x02K\x01\x86q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\x09tq\x0aRq\x0bu.', 'latin1'),
  ]);
}

/** `pickle.dumps` (protocol 4) of an object whose __reduce__ returns (os.system, ('id',)), as on posix. */
export function maliciousPickle(): Buffer {
  return Buffer.concat([
    Buffer.from([0x80, 0x04]),
    shortBinunicode('posix'),
    Buffer.from([0x94]),
    shortBinunicode('system'),
    Buffer.from([0x94, 0x93, 0x94]),
    shortBinunicode('id'),
    Buffer.from([0x94, 0x85, 0x94, 0x52, 0x94, 0x2e]),
  ]);
}

/** A joblib-style pickle (protocol 4) of a scikit-learn estimator with a large numpy payload. */
export function sklearnPickle(payloadBytes = 1024): Buffer {
  const bytes8 = Buffer.alloc(9);
  bytes8[0] = 0x8e; // BINBYTES8
  bytes8.writeBigUInt64LE(BigInt(payloadBytes), 1);
  return Buffer.concat([
    Buffer.from([0x80, 0x04]),
    shortBinunicode('sklearn.linear_model._logistic'),
    Buffer.from([0x94]),
    shortBinunicode('LogisticRegression'),
    Buffer.from([0x94, 0x93, 0x94, 0x29, 0x81, 0x94, 0x7d, 0x94]), // STACK_GLOBAL MEMOIZE EMPTY_TUPLE NEWOBJ MEMOIZE EMPTY_DICT MEMOIZE
    shortBinunicode('coef_'),
    Buffer.from([0x94]),
    shortBinunicode('numpy.core.multiarray'),
    Buffer.from([0x94]),
    shortBinunicode('_reconstruct'),
    Buffer.from([0x94, 0x93, 0x94]),
    bytes8,
    Buffer.alloc(payloadBytes, 0x3f),
    Buffer.from([0x94, 0x85, 0x94, 0x52, 0x94, 0x73, 0x62, 0x2e]), // MEMOIZE TUPLE1 MEMOIZE REDUCE MEMOIZE SETITEM BUILD STOP
  ]);
}

// ─── zip (PyTorch checkpoints) ──────────────────────────────────────────────────────────

export async function zip(entries: { name: string; data: Buffer; compress?: boolean }[]): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const e of entries) z.addBuffer(e.data, e.name, { compress: e.compress ?? false });
  z.end();
  const parts: Buffer[] = [];
  for await (const chunk of z.outputStream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** What torch.save(state_dict) writes since PyTorch 1.6 (stored entries, as torch writes them). */
export function torchZip(pickle = torchStateDictPickle()): Promise<Buffer> {
  return zip([
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    { name: 'archive/data/0', data: Buffer.alloc(16, 1) },
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}
