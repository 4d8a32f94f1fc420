/**
 * ONNX: a protobuf ModelProto, decoded with protobufjs against the part of the ONNX schema
 * (onnx/onnx.proto, same field numbers) that inspection reports. Fields not declared here —
 * graph nodes, tensor payloads, functions — are skipped by the decoder without being
 * materialised. ONNX has no magic number: a file is taken for ONNX when it starts with
 * `ir_version` (field 1) followed by another ModelProto field, and decodes as one.
 */
import protobuf from 'protobufjs';
import { InspectionLimitError, MalformedHeaderError, safeCount, type ByteSource } from './source.ts';
import type { InspectionFindings } from './types.ts';

const SCHEMA = `
syntax = "proto2";
package onnx;
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message TensorProto { repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; }
message SparseTensorProto { optional TensorProto values = 1; repeated int64 dims = 3; }
message GraphProto {
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated SparseTensorProto sparse_initializer = 15;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
export const ModelProto = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType names. */
const DATA_TYPES: Record<number, string> = {
  1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
  17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1',
};
const typeName = (t: number | undefined | null) => (t ? (DATA_TYPES[t] ?? `TYPE_${t}`) : 'UNDEFINED');

/** ModelProto fields (number → wire type) that may follow ir_version at the start of a file. */
const MODEL_FIELDS = new Map([[2, 2], [3, 2], [4, 2], [5, 0], [6, 2], [7, 2], [8, 2], [14, 2], [20, 2], [25, 2]]);

export function looksLikeOnnx(head: Buffer): boolean {
  if (head.length < 4 || head[0] !== 0x08) return false;
  try {
    const r = protobuf.Reader.create(head);
    r.uint32();
    const ir = Number(r.int64());
    if (ir < 1 || ir > 100) return false;
    const tag = r.uint32();
    return MODEL_FIELDS.get(tag >>> 3) === (tag & 7);
  } catch {
    return false;
  }
}

interface Dim { dim_value?: number | string | Long; dim_param?: string }
type Long = { toString(): string };
interface ValueInfo { name?: string; type?: { tensor_type?: { elem_type?: number; shape?: { dim?: Dim[] } } } }
interface Tensor { dims?: (number | Long)[]; data_type?: number; name?: string }
interface Model {
  ir_version?: number | Long;
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number | Long;
  opset_import?: { domain?: string; version?: number | Long }[];
  metadata_props?: { key?: string; value?: string }[];
  graph?: { name?: string; initializer?: Tensor[]; input?: ValueInfo[]; output?: ValueInfo[]; sparse_initializer?: { values?: Tensor; dims?: (number | Long)[] }[] };
}

const MAX_LISTED = 1000;

export async function inspectOnnx(src: ByteSource, maxBytes: number): Promise<InspectionFindings> {
  // A protobuf message cannot be read from the middle: decoding needs the whole file. ONNX files
  // past protobuf's 2 GiB limit keep their weights in external data files anyway.
  if (src.size > maxBytes) throw new InspectionLimitError(maxBytes, `the ${src.size}-byte ONNX model`);
  const bytes = await src.read(0, src.size);
  let model: Model;
  try {
    model = ModelProto.toObject(ModelProto.decode(bytes), { longs: String, defaults: false }) as Model;
  } catch (err) {
    throw new MalformedHeaderError(`not a decodable ONNX ModelProto: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (!graph) throw new MalformedHeaderError('the ONNX model has no graph');
  const dtypes: Record<string, number> = {};
  let parameters = 0n;
  let tensors = 0;
  const count = (dims: (number | Long)[] | undefined, dataType: number | undefined) => {
    let n = 1n;
    for (const d of dims ?? []) {
      const v = BigInt(d.toString());
      if (v < 0n) throw new MalformedHeaderError('an initializer has a negative dimension');
      n *= v;
    }
    parameters += n;
    tensors++;
    const name = typeName(dataType);
    dtypes[name] = (dtypes[name] ?? 0) + 1;
  };
  for (const t of graph.initializer ?? []) count(t.dims, t.data_type);
  for (const s of graph.sparse_initializer ?? []) count(s.dims, s.values?.data_type);
  const props = Object.fromEntries((model.metadata_props ?? []).slice(0, MAX_LISTED).map((p) => [p.key ?? '', p.value ?? '']));
  return {
    format: 'onnx',
    parameter_count: safeCount(parameters, 'the parameter count'),
    tensor_count: tensors,
    dtypes,
    metadata: {
      ir_version: num(model.ir_version),
      opset_import: (model.opset_import ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version) })),
      producer_name: model.producer_name ?? null,
      producer_version: model.producer_version ?? null,
      domain: model.domain ?? null,
      model_version: num(model.model_version),
      graph_name: graph.name ?? null,
      inputs: (graph.input ?? []).slice(0, MAX_LISTED).map(valueInfo),
      outputs: (graph.output ?? []).slice(0, MAX_LISTED).map(valueInfo),
      ...(Object.keys(props).length > 0 ? { metadata_props: props } : {}),
    },
  };
}

function num(v: number | Long | undefined): number | string | null {
  if (v === undefined) return null;
  const n = Number(v.toString());
  return Number.isSafeInteger(n) ? n : v.toString();
}

function valueInfo(v: ValueInfo) {
  const tensor = v.type?.tensor_type;
  return {
    name: v.name ?? '',
    element_type: tensor ? typeName(tensor.elem_type) : null,
    shape: tensor?.shape ? (tensor.shape.dim ?? []).map((d) => (d.dim_value !== undefined ? num(d.dim_value) : (d.dim_param ?? null))) : null,
  };
}
