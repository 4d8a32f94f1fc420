/**
 * The stream a chunk's body passes through on its way to storage: it enforces the exact length
 * (cutting a too-long body off as soon as the excess arrives), computes the chunk's SHA-256, feeds
 * the upload's resumable prefix digest when this chunk extends it, and verifies an RFC 9530
 * `Content-Digest`. The last piece is held back until the length and the digest are known to be
 * right, so storage never receives a complete body for a rejected chunk (see ExactLengthStream).
 */
import { createHash } from 'node:crypto';
import { errors } from '../errors.ts';
import { ExactLengthStream } from '../storage/index.ts';
import type { ResumableSha256 } from './resumable-sha256.ts';

/** The chunk's bytes do not match its Content-Digest. */
export class ChunkDigestError extends Error {
  constructor() {
    super('chunk bytes do not match the Content-Digest');
    this.name = 'ChunkDigestError';
  }
}

export class ChunkBody extends ExactLengthStream {
  /** Hex SHA-256 of the chunk, set once the whole body has arrived. */
  sha256 = '';
  private readonly hash = createHash('sha256');

  constructor(
    expected: number,
    private readonly expectedDigest: Buffer | undefined,
    private readonly prefix: ResumableSha256 | null,
  ) {
    // Default buffering: pieces pass through as they came off the socket. Copying them into
    // bigger slices would halve the write calls but double the garbage, which costs more.
    super(expected);
  }

  protected override onPiece(piece: Buffer): void {
    this.hash.update(piece);
    this.prefix?.update(piece);
  }

  protected override verify(): Error | null {
    const digest = this.hash.digest();
    this.sha256 = digest.toString('hex');
    return this.expectedDigest && !digest.equals(this.expectedDigest) ? new ChunkDigestError() : null;
  }
}

/**
 * The SHA-256 of an RFC 9530 `Content-Digest` header (a structured-field dictionary such as
 * `sha-256=:<base64>:, sha-512=:…:`), or undefined when it names no sha-256. Other algorithms are
 * ignored; a malformed sha-256 value is a 422.
 */
export function parseContentDigest(header: string | undefined): Buffer | undefined {
  if (header === undefined) return undefined;
  for (const member of header.split(',')) {
    const eq = member.indexOf('=');
    if (eq < 0) continue;
    if (member.slice(0, eq).trim().toLowerCase() !== 'sha-256') continue;
    const value = member.slice(eq + 1).split(';')[0]!.trim();
    const match = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value);
    const bytes = match ? Buffer.from(match[1]!, 'base64') : undefined;
    if (!bytes || bytes.length !== 32) {
      throw errors.validation('The Content-Digest header is invalid: sha-256 must be 32 bytes of base64 between colons, e.g. sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:.', [
        { loc: ['header', 'Content-Digest'], msg: 'must be sha-256=:<base64 of 32 bytes>:', type: 'format' },
      ]);
    }
    return bytes;
  }
  return undefined;
}
