/**
 * PyTorch's zip checkpoint (`torch.save` since 1.6): a zip whose `<root>/data.pkl` is a pickle
 * and whose `<root>/data/<n>` entries hold the tensor storages. The archive is read with yauzl
 * over ranged reads (central directory, one local header, one entry), and data.pkl is scanned,
 * never unpickled.
 */
import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { bufferSource, InspectionLimitError, MalformedHeaderError, type ByteSource } from './source.ts';
import { pickleWarnings, scanPickle } from './pickle.ts';
import type { InspectionFindings } from './types.ts';

const MAX_ENTRIES = 200_000;

export function looksLikeZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x04034b50;
}

class SourceReader extends yauzl.RandomAccessReader {
  constructor(private readonly src: ByteSource) {
    super();
  }
  override _readStreamForRange(start: number, end: number): Readable {
    const src = this.src;
    return Readable.from(
      (async function* () {
        yield await src.read(start, end - start);
      })(),
      { objectMode: false },
    );
  }
}

/** The findings for a PyTorch zip, or null for any other zip (not a format we inspect). */
export async function inspectPytorchZip(src: ByteSource, maxBytes: number): Promise<InspectionFindings | null> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.fromRandomAccessReader(new SourceReader(src), src.size, { lazyEntries: true, autoClose: false, strictFileNames: false }, (err, z) =>
        err ? reject(err) : resolve(z),
      ),
    );
  } catch (err) {
    throw zipError(err);
  }
  try {
    if (zip.entryCount > MAX_ENTRIES) throw new MalformedHeaderError(`the zip claims ${zip.entryCount} entries`);
    let pickle: yauzl.Entry | null = null;
    let storages = 0;
    let root: string | null = null;
    const entries = await new Promise<yauzl.Entry[]>((resolve, reject) => {
      const kept: yauzl.Entry[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        kept.push(e);
        zip.readEntry();
      });
      zip.on('end', () => resolve(kept));
      zip.on('error', reject);
      zip.readEntry();
    }).catch((err: unknown) => {
      throw zipError(err);
    });
    for (const e of entries) {
      const slash = e.fileName.indexOf('/');
      const dir = slash > 0 ? e.fileName.slice(0, slash) : '';
      if (e.fileName === `${dir}/data.pkl` && pickle === null) {
        pickle = e;
        root = dir;
      }
    }
    if (!pickle) return null;
    for (const e of entries) if (e.fileName.startsWith(`${root}/data/`) && !e.fileName.endsWith('/')) storages++;
    if (pickle.uncompressedSize > maxBytes || pickle.compressedSize > maxBytes) throw new InspectionLimitError(maxBytes, `the ${pickle.uncompressedSize}-byte ${pickle.fileName}`);
    const bytes = await readEntry(zip, pickle);
    const scan = await scanPickle(bufferSource(bytes));
    return {
      format: 'pytorch',
      metadata: { globals: scan.globals, pickle_protocol: scan.protocol, pickle_file: pickle.fileName, storage_count: storages },
      warnings: pickleWarnings(scan),
    };
  } finally {
    zip.close();
  }
}

/** One entry's bytes, decompressed; yauzl checks the count against the declared size (no bombs). */
async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  try {
    const stream = await new Promise<Readable>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
    const parts: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      total += (chunk as Buffer).length;
      if (total > entry.uncompressedSize) {
        stream.destroy();
        throw new MalformedHeaderError(`${entry.fileName} inflates past its declared ${entry.uncompressedSize} bytes`);
      }
      parts.push(chunk as Buffer);
    }
    return Buffer.concat(parts);
  } catch (err) {
    throw zipError(err);
  }
}

function zipError(err: unknown): Error {
  if (err instanceof InspectionLimitError || err instanceof MalformedHeaderError) return err;
  return new MalformedHeaderError(`not a readable zip archive: ${(err as Error).message}`);
}
