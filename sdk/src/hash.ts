import { createSHA256 } from 'hash-wasm';
import { isNode } from './runtime.js';

// SHA-256 that is fast where it can be: node:crypto in Node (native, several times faster than
// WebAssembly), hash-wasm elsewhere (browsers have no incremental SHA-256 of their own). hash-wasm
// is imported statically so bundlers keep only its SHA-256; its WebAssembly compiles on first use.

export interface Sha256 {
  update(data: Uint8Array): void;
  /** Ends the hash: 32 raw bytes. */
  digest(): Uint8Array;
}

type NodeCrypto = typeof import('node:crypto');
let nodeCrypto: Promise<NodeCrypto | null> | undefined;

function loadNodeCrypto(): Promise<NodeCrypto | null> {
  nodeCrypto ??= isNode ? import(/* webpackIgnore: true */ 'node:crypto').catch(() => null) : Promise.resolve(null);
  return nodeCrypto;
}

/** A new incremental SHA-256. */
export async function createSha256(): Promise<Sha256> {
  const crypto = await loadNodeCrypto();
  if (crypto) {
    const hash = crypto.createHash('sha256');
    return {
      update: (data) => void hash.update(data),
      digest: () => new Uint8Array(hash.digest()),
    };
  }
  return createWasmSha256();
}

/** The incremental SHA-256 used where node:crypto is not available (browsers). */
export async function createWasmSha256(): Promise<Sha256> {
  const hasher = await createSHA256();
  hasher.init();
  return {
    update: (data) => void hasher.update(data),
    digest: () => hasher.digest('binary'),
  };
}

/** SHA-256 of one buffer. */
export async function sha256Of(data: Uint8Array): Promise<Uint8Array> {
  const crypto = await loadNodeCrypto();
  if (crypto) return new Uint8Array(crypto.createHash('sha256').update(data).digest());
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    // WebCrypto is native but only exists in secure contexts; hash-wasm covers the rest.
    return new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
  }
  const hash = await createWasmSha256();
  hash.update(data);
  return hash.digest();
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** RFC 9530 `Content-Digest` value for a chunk. */
export async function contentDigest(data: Uint8Array): Promise<string> {
  return `sha-256=:${toBase64(await sha256Of(data))}:`;
}
