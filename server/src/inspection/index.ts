/**
 * Artifact inspection (docs/architecture.md, "Artifact inspection"): what a weight file holds, read from its
 * header only. One module per format, each a function of a ByteSource and a byte budget; the
 * format is chosen by the first bytes, never by the file name.
 */
import { inspectGguf, looksLikeGguf } from './gguf.ts';
import { inspectOnnx, looksLikeOnnx } from './onnx.ts';
import { looksLikePickle, pickleWarnings, scanPickle } from './pickle.ts';
import { inspectPytorchZip, looksLikeZip } from './pytorch-zip.ts';
import { inspectSafetensors, looksLikeSafetensors } from './safetensors.ts';
import { InspectionLimitError, SourceReadError, type ByteSource } from './source.ts';
import type { Inspection, InspectionFindings, InspectionFormat } from './types.ts';

export { bufferSource, rangedSource, InspectionLimitError, MalformedHeaderError, SourceReadError, type ByteSource } from './source.ts';
export type { Inspection, InspectionFormat } from './types.ts';

const HEAD_BYTES = 64;

/** The format the first bytes announce, or null. */
export function detectFormat(head: Buffer): InspectionFormat | 'zip' | null {
  if (looksLikeGguf(head)) return 'gguf';
  if (looksLikeSafetensors(head)) return 'safetensors';
  if (looksLikeZip(head)) return 'zip';
  if (looksLikePickle(head)) return 'pickle';
  if (looksLikeOnnx(head)) return 'onnx';
  return null;
}

/**
 * Inspects the bytes in `src`, reading at most `maxBytes` of them. Resolves with the inspection,
 * null for content that is no recognised format, or an inspection with `error` for a truncated
 * or hostile header. Rejects with InspectionLimitError when the header needs more than
 * `maxBytes` (the caller decides: retry with a larger budget, or record the error), and with
 * SourceReadError when the storage fails.
 */
export async function inspect(src: ByteSource, maxBytes: number): Promise<Inspection | null> {
  const head = await src.read(0, Math.min(HEAD_BYTES, src.size));
  const kind = detectFormat(head);
  if (kind === null) return null;
  try {
    const found = await run(kind, src, maxBytes);
    return found === null ? null : complete(found, null);
  } catch (err) {
    if (err instanceof InspectionLimitError || err instanceof SourceReadError) throw err;
    // MalformedHeaderError, and whatever else hostile bytes provoke in a decoder (a RangeError
    // from a protobuf length, say): a verdict on the content, never a failed request.
    return complete({ format: kind === 'zip' ? 'pytorch' : kind }, (err as Error).message ?? String(err));
  }
}

/** The inspection to store when the header is larger than the configured limit. */
export function limitInspection(head: Buffer, err: InspectionLimitError): Inspection | null {
  const kind = detectFormat(head);
  if (kind === null) return null;
  return complete({ format: kind === 'zip' ? 'pytorch' : kind }, err.message);
}

async function run(kind: InspectionFormat | 'zip', src: ByteSource, maxBytes: number): Promise<InspectionFindings | null> {
  switch (kind) {
    case 'safetensors':
      return inspectSafetensors(src, maxBytes);
    case 'gguf':
      return inspectGguf(src);
    case 'onnx':
      return inspectOnnx(src, maxBytes);
    case 'zip':
      return inspectPytorchZip(src, maxBytes);
    case 'pickle':
    case 'pytorch': {
      const scan = await scanPickle(src);
      return {
        format: 'pickle',
        metadata: { globals: scan.globals, pickle_protocol: scan.protocol },
        warnings: pickleWarnings(scan),
      };
    }
  }
}

function complete(f: InspectionFindings, error: string | null): Inspection {
  return {
    format: f.format,
    parameter_count: f.parameter_count ?? null,
    tensor_count: f.tensor_count ?? null,
    dtypes: f.dtypes ?? null,
    architecture: f.architecture ?? null,
    quantization: f.quantization ?? null,
    metadata: f.metadata ?? null,
    warnings: f.warnings ?? (f.format === 'pickle' || f.format === 'pytorch' ? ['pickle_code_execution'] : []),
    error,
  };
}
