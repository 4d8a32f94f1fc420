/**
 * Artifact inspection per format, on small real files made by test/support/weights.ts, and on
 * hostile ones: every case ends with a result (or InspectionLimitError), never a hang or a crash.
 */
import { describe, expect, it } from 'vitest';
import { bufferSource, inspect, InspectionLimitError, type ByteSource } from '../../server/src/inspection/index.ts';
import { isDangerousGlobal } from '../../server/src/inspection/pickle.ts';
import {
  gguf,
  GgufWriter,
  maliciousPickle,
  onnxMlp,
  safetensors,
  safetensorsRaw,
  sklearnPickle,
  torchStateDictPickle,
  torchZip,
  zip,
} from '../support/weights.ts';

const MiB = 1024 * 1024;
const LIMIT = 100 * MiB;

/** A source that records how many bytes were read, to show that only the header is. */
function counting(bytes: Buffer): ByteSource & { read_bytes: number } {
  const inner = bufferSource(bytes);
  const src = {
    size: bytes.length,
    read_bytes: 0,
    async read(offset: number, length: number) {
      const out = await inner.read(offset, length);
      src.read_bytes += out.length;
      return out;
    },
  };
  return src;
}

describe('safetensors', () => {
  it('counts tensors, parameters and dtypes, and returns __metadata__, reading only the header', async () => {
    const file = safetensors(
      [
        { name: 'model.embed.weight', dtype: 'BF16', shape: [1000, 64] },
        { name: 'model.layers.0.weight', dtype: 'BF16', shape: [64, 64] },
        { name: 'lm_head.bias', dtype: 'F32', shape: [1000] },
      ],
      { format: 'pt', base_model: 'acme/tiny' },
    );
    const src = counting(file);
    const result = await inspect(src, LIMIT);
    expect(result).toEqual({
      format: 'safetensors',
      parameter_count: 1000 * 64 + 64 * 64 + 1000,
      tensor_count: 3,
      dtypes: { BF16: 2, F32: 1 },
      architecture: null,
      quantization: null,
      metadata: { format: 'pt', base_model: 'acme/tiny' },
      warnings: [],
      error: null,
    });
    expect(src.read_bytes).toBeLessThan(1024); // the ~140 KB of tensor data was never read
  });

  it('reports a header length of 2^62 as an error without reading it', async () => {
    const file = safetensorsRaw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4, 2n ** 62n);
    const result = await inspect(counting(file), LIMIT);
    expect(result).toMatchObject({ format: 'safetensors', parameter_count: null, error: expect.stringContaining('larger than the rest of the file') });
  });

  it('reports a shape whose size does not match its bytes (dimensions of 2^53 and more)', async () => {
    const file = safetensorsRaw(JSON.stringify({ w: { dtype: 'F32', shape: [2 ** 52, 2 ** 52], data_offsets: [0, 16] } }), 16);
    expect((await inspect(bufferSource(file), LIMIT))!.error).toMatch(/needs .* bytes, data_offsets span 16/);
    const unsafe = safetensorsRaw('{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}', 16);
    expect((await inspect(bufferSource(unsafe), LIMIT))!.error).toMatch(/invalid dimension/);
  });

  it('refuses 60 MB of nested JSON before parsing it', async () => {
    const depth = 30 * MiB;
    const json = Buffer.alloc(depth * 2 + 6);
    json.write('{"a":', 0);
    json.fill(0x5b, 5, 5 + depth); // [
    json.fill(0x5d, 5 + depth); // ]
    json.write('}', json.length - 1);
    const file = safetensorsRaw('', 0, BigInt(json.length));
    const result = await inspect(bufferSource(Buffer.concat([file.subarray(0, 8), json])), LIMIT);
    expect(result).toMatchObject({ format: 'safetensors', error: expect.stringContaining('nested more than') });
  });

  it('reports a header cut short by the end of the file', async () => {
    const file = safetensors([{ name: 'w', dtype: 'F32', shape: [4] }]);
    const declared = file.readBigUInt64LE(0);
    const truncated = file.subarray(0, 8 + Number(declared) - 5);
    expect((await inspect(bufferSource(truncated), LIMIT))!.error).toMatch(/larger than the rest of the file/);
  });

  it('reports tensor data past the end of the file', async () => {
    const file = safetensorsRaw('{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}', 100);
    expect((await inspect(bufferSource(file), LIMIT))!.error).toMatch(/ends at byte 4000 of the data, which has only 100 bytes/);
  });

  it('asks for a larger budget when the header is larger than the one given', async () => {
    const file = safetensors([{ name: 'w', dtype: 'F32', shape: [4] }], { notes: 'x'.repeat(10_000) });
    await expect(inspect(bufferSource(file), 4096)).rejects.toBeInstanceOf(InspectionLimitError);
    expect((await inspect(bufferSource(file), 20_000))!.metadata).toEqual({ notes: 'x'.repeat(10_000) });
  });
});

describe('GGUF', () => {
  const llama = (version = 3) =>
    gguf({
      version,
      kv: [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['general.name', { type: 'string', value: 'Tiny Llama' }],
        ['general.file_type', { type: 'u32', value: 15 }],
        ['llama.context_length', { type: 'u32', value: 4096 }],
        ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
        ['general.size_label', { type: 'u64', value: 2n ** 60n }],
        ['tokenizer.ggml.tokens', { type: 'array', items: 'string', value: Array.from({ length: 100 }, (_, i) => `tok${i}`) }],
        ['tokenizer.ggml.token_type', { type: 'array', items: 'i32', value: [1, 2, 3] }],
        ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
      ],
      tensors: [
        { name: 'token_embd.weight', dims: [64n, 100n], type: 12 },
        { name: 'blk.0.attn_q.weight', dims: [64n, 64n], type: 12 },
        { name: 'blk.0.ffn_down.weight', dims: [64n, 64n], type: 14 },
        { name: 'output_norm.weight', dims: [64n], type: 0 },
      ],
    });

  it.each([2, 3])('reads the key-values and tensor infos of version %i', async (version) => {
    const result = await inspect(bufferSource(llama(version)), LIMIT);
    expect(result).toEqual({
      format: 'gguf',
      parameter_count: 6400 + 4096 + 4096 + 64,
      tensor_count: 4,
      dtypes: { Q4_K: 2, Q6_K: 1, F32: 1 },
      architecture: 'llama',
      quantization: 'Q4_K_M',
      metadata: {
        'gguf.version': version,
        'general.architecture': 'llama',
        'general.name': 'Tiny Llama',
        'general.file_type': 15,
        'llama.context_length': 4096,
        'llama.rope.freq_base': 10000,
        'general.size_label': '1152921504606846976',
        'tokenizer.ggml.token_type': [1, 2, 3],
        'tokenizer.ggml.add_bos_token': true,
      }, // the 100-token array is left out
      warnings: [],
      error: null,
    });
  });

  it('reports a tensor count of 2^60 without looping over it', async () => {
    const file = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(2n ** 60n).u64(0n).raw(Buffer.alloc(256)).bytes();
    expect(await inspect(bufferSource(file), LIMIT)).toMatchObject({ format: 'gguf', error: expect.stringContaining('1152921504606846976 tensors') });
  });

  it('reports a string claiming gigabytes', async () => {
    const file = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(0n).u64(1n).u64(5n * 2n ** 30n).raw(Buffer.from('general.name')).raw(Buffer.alloc(200)).bytes();
    expect((await inspect(bufferSource(file), LIMIT))!.error).toMatch(/a key claims 5368709120 bytes/);
  });

  it('reports an array claiming 2^62 items', async () => {
    const w = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(0n).u64(1n).string('tokenizer.ggml.scores').u32(9).u32(6).u64(2n ** 62n);
    expect((await inspect(bufferSource(Buffer.concat([w.bytes(), Buffer.alloc(100)])), LIMIT))!.error).toMatch(/claims 4611686018427387904 items/);
  });

  it('reports a truncated file, and an unsupported version', async () => {
    const file = llama();
    expect((await inspect(bufferSource(file.subarray(0, file.length - 64 - 10)), LIMIT))!.error).toMatch(/ends inside a tensor info/);
    const v1 = Buffer.from(file);
    v1.writeUInt32LE(1, 4);
    expect((await inspect(bufferSource(v1), LIMIT))!.error).toMatch(/version 1 is not supported/);
  });
});

describe('ONNX', () => {
  it('reads opsets, producer, inputs/outputs and counts the initializers, skipping nodes and payloads', async () => {
    const result = await inspect(bufferSource(onnxMlp()), LIMIT);
    expect(result).toEqual({
      format: 'onnx',
      parameter_count: 64 * 128 + 64 + 64 + 1 + 2,
      tensor_count: 5,
      dtypes: { FLOAT: 4, INT64: 1 },
      architecture: null,
      quantization: null,
      metadata: {
        ir_version: 9,
        opset_import: [{ domain: '', version: 17 }],
        producer_name: 'pytorch',
        producer_version: '2.4.1',
        domain: null,
        model_version: null,
        graph_name: 'main_graph',
        inputs: [{ name: 'features', element_type: 'FLOAT', shape: ['batch', 128] }],
        outputs: [{ name: 'churn_probability', element_type: 'FLOAT', shape: ['batch', 1] }],
        metadata_props: { author: 'ml-platform' },
      },
      warnings: [],
      error: null,
    });
  });

  it('reports a truncated model', async () => {
    const file = onnxMlp();
    expect(await inspect(bufferSource(file.subarray(0, file.length - 300)), LIMIT)).toMatchObject({
      format: 'onnx',
      parameter_count: null,
      error: expect.stringContaining('not a decodable ONNX ModelProto'),
    });
  });

  it('asks for a larger budget for a model larger than the one given', async () => {
    await expect(inspect(bufferSource(onnxMlp()), 1024)).rejects.toBeInstanceOf(InspectionLimitError);
  });
});

describe('pickles', () => {
  it('finds the globals of a bare pickle by scanning, and flags os.system', async () => {
    expect(await inspect(bufferSource(maliciousPickle()), LIMIT)).toEqual({
      format: 'pickle',
      parameter_count: null,
      tensor_count: null,
      dtypes: null,
      architecture: null,
      quantization: null,
      metadata: { globals: ['posix.system'], pickle_protocol: 4 },
      warnings: ['pickle_code_execution', 'pickle_dangerous_global'],
      error: null,
    });
  });

  it('skips a large payload without reading it (a joblib estimator)', async () => {
    const src = counting(sklearnPickle(5 * MiB));
    const result = await inspect(src, LIMIT);
    expect(result).toMatchObject({
      format: 'pickle',
      metadata: { globals: ['numpy.core.multiarray._reconstruct', 'sklearn.linear_model._logistic.LogisticRegression'], pickle_protocol: 4 },
      warnings: ['pickle_code_execution'],
      error: null,
    });
    expect(src.read_bytes).toBeLessThan(512 * 1024);
  });

  it('reports a length of 2^62 and a truncated pickle', async () => {
    const claim = Buffer.concat([Buffer.from([0x80, 0x04, 0x8e]), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x40]), Buffer.alloc(20)]);
    expect((await inspect(bufferSource(claim), LIMIT))!.error).toMatch(/claims 4611686018427387904 bytes/);
    const cut = maliciousPickle().subarray(0, 12);
    expect(await inspect(bufferSource(cut), LIMIT)).toMatchObject({ format: 'pickle', error: expect.stringMatching(/only 0 are left/), warnings: ['pickle_code_execution'] });
  });

  it('knows the code-execution entry points', () => {
    for (const g of ['os.system', 'posix.system', 'nt.system', 'subprocess.Popen', 'builtins.eval', 'builtins.exec', '__builtin__.__import__', 'runpy._run_code']) {
      expect(isDangerousGlobal(g), g).toBe(true);
    }
    for (const g of ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'numpy.core.multiarray._reconstruct', 'builtins.set']) {
      expect(isDangerousGlobal(g), g).toBe(false);
    }
  });
});

describe('PyTorch zip', () => {
  it('scans data.pkl inside the archive', async () => {
    expect(await inspect(bufferSource(await torchZip()), LIMIT)).toEqual({
      format: 'pytorch',
      parameter_count: null,
      tensor_count: null,
      dtypes: null,
      architecture: null,
      quantization: null,
      metadata: {
        globals: ['collections.OrderedDict', 'torch.FloatStorage', 'torch._utils._rebuild_tensor_v2'],
        pickle_protocol: 2,
        pickle_file: 'archive/data.pkl',
        storage_count: 1,
      },
      warnings: ['pickle_code_execution'],
      error: null,
    });
  });

  it('flags a checkpoint whose pickle runs a command', async () => {
    const result = await inspect(bufferSource(await torchZip(maliciousPickle())), LIMIT);
    expect(result).toMatchObject({ format: 'pytorch', warnings: ['pickle_code_execution', 'pickle_dangerous_global'], metadata: { globals: ['posix.system'] } });
  });

  it('is not fooled by a zip bomb: an entry inflating past its declared size', async () => {
    const bomb = await zip([{ name: 'archive/data.pkl', data: Buffer.alloc(20 * MiB), compress: true }]);
    expect(bomb.length).toBeLessThan(100 * 1024);
    // Declare 100 bytes in both the local header (offset 22) and the central directory entry.
    const lied = Buffer.from(bomb);
    lied.writeUInt32LE(100, 22);
    const central = lied.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    lied.writeUInt32LE(100, central + 24);
    expect(await inspect(bufferSource(lied), LIMIT)).toMatchObject({ format: 'pytorch', error: expect.any(String) });
    // Declared honestly, 20 MiB is past a 1 MiB budget: nothing is inflated.
    await expect(inspect(bufferSource(bomb), 1 * MiB)).rejects.toBeInstanceOf(InspectionLimitError);
  });

  it('leaves other zips alone, and reports a truncated archive', async () => {
    expect(await inspect(bufferSource(await zip([{ name: 'saved_model/model.keras', data: Buffer.from('x') }])), LIMIT)).toBeNull();
    const file = await torchZip();
    expect(await inspect(bufferSource(file.subarray(0, file.length - 30)), LIMIT)).toMatchObject({ format: 'pytorch', error: expect.stringContaining('zip') });
  });
});

describe('detection', () => {
  it('goes by the bytes, not the name, and returns null for other content', async () => {
    for (const other of [Buffer.from('{"just": "json"}'), Buffer.from('hello world, a model card\n'), Buffer.alloc(0), Buffer.from([0x89, 0x50, 0x4e, 0x47])]) {
      expect(await inspect(bufferSource(other), LIMIT)).toBeNull();
    }
  });
});
