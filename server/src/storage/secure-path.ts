/**
 * The key language shared by every BlobStore, and the filesystem guard built on it.
 * Keys come from the server, but a key that could name something outside the store's root
 * (or a file the store keeps for itself) is refused instead of trusted: a bug must not become a
 * path traversal. Both backends apply the same rules so a key valid on one is valid on the other.
 */
import path from 'node:path';
import { InvalidBlobKeyError } from './blob-store.ts';

const MAX_KEY_LENGTH = 1024; // S3's limit (in UTF-8 bytes; checked below)

/** Throws InvalidBlobKeyError unless `key` is `/`-separated safe segments. Returns its segments. */
export function assertValidKey(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidBlobKeyError(String(key), 'empty');
  if (Buffer.byteLength(key) > MAX_KEY_LENGTH) throw new InvalidBlobKeyError(key, `longer than ${MAX_KEY_LENGTH} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new InvalidBlobKeyError(key, 'contains a control character');
  if (key.includes('\\')) throw new InvalidBlobKeyError(key, 'contains a backslash');
  if (key.startsWith('/')) throw new InvalidBlobKeyError(key, 'is absolute');
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') throw new InvalidBlobKeyError(key, 'has an empty segment');
    if (segment === '.' || segment === '..') throw new InvalidBlobKeyError(key, `has a "${segment}" segment`);
    // Dot-names are reserved for the store's own files (fs keeps staging data in `.staging/`).
    if (segment.startsWith('.')) throw new InvalidBlobKeyError(key, 'has a segment starting with "."');
  }
  return segments;
}

/**
 * Absolute path of `key` under `root` (which must be absolute). Validates the key, then checks the
 * resolved path really is inside root — a second line of defence should the rules above miss a case.
 */
export function resolveKeyPath(root: string, key: string): string {
  const segments = assertValidKey(key);
  const resolved = path.resolve(root, ...segments);
  const relative = path.relative(root, resolved);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new InvalidBlobKeyError(key, 'resolves outside the storage directory');
  }
  return resolved;
}
