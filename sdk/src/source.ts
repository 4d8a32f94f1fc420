import { isNode } from './runtime.js';

/** What `uploadArtifact` can read: a file path (Node only), a `Blob`/`File`, or bytes in memory. */
export type UploadSource = string | Blob | Uint8Array;

/** Random-access reads of an upload source, one chunk at a time. */
export interface ChunkReader {
  readonly size: number;
  /** A name the source itself carries (a path's base name, a `File`'s name). */
  readonly fileName: string | null;
  /** A type the source itself carries (a `Blob`'s `type`). */
  readonly contentType: string | null;
  /**
   * Bytes [start, end). With `into` (at least end - start long) a reader that can read in place
   * (`readsInPlace`) fills it and returns a view of it, so the caller can recycle buffers.
   */
  read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;
  /** True when `read` fills the buffer it is given instead of allocating. */
  readonly readsInPlace: boolean;
  close(): Promise<void>;
}

export async function openSource(source: UploadSource): Promise<ChunkReader> {
  if (typeof source === 'string') return openFile(source);
  if (source instanceof Uint8Array) return bytesReader(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobReader(source);
  throw new TypeError('uploadArtifact: source must be a file path, a Blob/File or a Uint8Array');
}

function bytesReader(bytes: Uint8Array): ChunkReader {
  return {
    size: bytes.byteLength,
    fileName: null,
    contentType: null,
    readsInPlace: false,
    // A view, not a copy: the bytes are in memory already.
    read: async (start, end) => bytes.subarray(start, end),
    close: async () => {},
  };
}

function blobReader(blob: Blob): ChunkReader {
  const name = (blob as { name?: unknown }).name;
  return {
    size: blob.size,
    fileName: typeof name === 'string' && name !== '' ? name : null,
    contentType: blob.type || null,
    readsInPlace: false,
    read: async (start, end) => new Uint8Array(await blob.slice(start, end).arrayBuffer()),
    close: async () => {},
  };
}

async function openFile(path: string): Promise<ChunkReader> {
  if (!isNode) {
    throw new TypeError('uploadArtifact: a file path works in Node only; pass a Blob or File in browsers');
  }
  const [{ open }, { basename }] = await Promise.all([import(/* webpackIgnore: true */ 'node:fs/promises'), import(/* webpackIgnore: true */ 'node:path')]);
  const handle = await open(path, 'r');
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new TypeError(`uploadArtifact: ${path} is not a regular file`);
    return {
      size: stats.size,
      fileName: basename(path),
      contentType: null,
      readsInPlace: true,
      async read(start, end, into) {
        const buffer = into ? into.subarray(0, end - start) : new Uint8Array(end - start);
        let filled = 0;
        while (filled < buffer.byteLength) {
          const { bytesRead } = await handle.read(buffer, filled, buffer.byteLength - filled, start + filled);
          if (bytesRead === 0) throw new Error(`uploadArtifact: ${path} became shorter while it was being read`);
          filled += bytesRead;
        }
        return buffer;
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

const contentTypes: Record<string, string> = {
  json: 'application/json',
  txt: 'text/plain',
  md: 'text/markdown',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  csv: 'text/csv',
  html: 'text/html',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
};

/** A content type from a file name's extension; model formats are plain bytes. */
export function guessContentType(fileName: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(fileName)?.[1]?.toLowerCase();
  return (ext && contentTypes[ext]) || 'application/octet-stream';
}
