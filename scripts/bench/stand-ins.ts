/**
 * The three upload calls the SDK's `uploadArtifact` makes (initiate, chunk, complete), as the
 * ceiling server and the tus adapter understand them, and the records they answer with: just
 * enough for the SDK to drive servers that are not ours through exactly the same client code.
 */
import { randomUUID } from 'node:crypto';
import type { ArtifactUploadCreate, ArtifactUploadSession, ModelArtifact } from '../../sdk/src/types.ts';

export type UploadCall =
  | { kind: 'initiate'; productId: string }
  | { kind: 'chunk'; productId: string; uploadId: string; index: number }
  | { kind: 'complete'; productId: string; uploadId: string };

const uploadPath = /^\/api\/v1\.0\/catalog\/products\/([^/]+)\/model-artifacts\/uploads(?:\/([^/]+)\/(?:chunks\/(\d+)|(complete)))?$/;

/** Which upload call `method pathname` is, or null for anything else. */
export function uploadCall(method: string, pathname: string): UploadCall | null {
  const match = uploadPath.exec(pathname);
  if (!match) return null;
  const [, productId, uploadId, index, complete] = match as unknown as [string, string, string | undefined, string | undefined, string | undefined];
  if (method === 'POST' && uploadId === undefined) return { kind: 'initiate', productId };
  if (method === 'PUT' && uploadId !== undefined && index !== undefined) return { kind: 'chunk', productId, uploadId, index: Number(index) };
  if (method === 'POST' && uploadId !== undefined && complete) return { kind: 'complete', productId, uploadId };
  return null;
}

export interface StandInSession {
  id: string;
  productId: string;
  create: ArtifactUploadCreate;
  chunkSize: number;
  chunkCount: number;
  received: Set<number>;
}

export function newSession(productId: string, create: ArtifactUploadCreate, chunkSize: number, id: string = randomUUID()): StandInSession {
  return { id, productId, create, chunkSize, chunkCount: Math.ceil(create.total_size_bytes / chunkSize), received: new Set() };
}

export function chunkLengthOf(s: StandInSession, index: number): number {
  return Math.min(s.chunkSize, s.create.total_size_bytes - index * s.chunkSize);
}

export function sessionRecord(s: StandInSession, status: ArtifactUploadSession['status']): ArtifactUploadSession {
  const now = new Date().toISOString();
  const received = [...s.received].sort((a, b) => a - b);
  return {
    id: s.id,
    product_id: s.productId,
    file_name: s.create.file_name,
    content_type: s.create.content_type,
    total_size_bytes: s.create.total_size_bytes,
    chunk_size_bytes: s.chunkSize,
    chunk_count: s.chunkCount,
    expected_sha256: s.create.sha256 ?? null,
    received_bytes: received.reduce((sum, i) => sum + chunkLengthOf(s, i), 0),
    received_chunks: received,
    status,
    artifact_id: null,
    deduplicated: false,
    expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    created_at: now,
    completed_at: status === 'completed' ? now : null,
  };
}

/** The artifact record of a completed stand-in session; `sha256` is the one the client sent. */
export function artifactRecord(s: StandInSession, sha256: string, storageUri: string): ModelArtifact {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    product_id: s.productId,
    product_version_id: null,
    training_run_id: null,
    artifact_kind: s.create.artifact_kind ?? 'model_binary',
    version_label: s.create.version_label ?? null,
    file_name: s.create.file_name,
    content_type: s.create.content_type,
    size_bytes: s.create.total_size_bytes,
    sha256,
    storage_backend: 'fs',
    storage_uri: storageUri,
    external_uri: null,
    status: 'available',
    is_current: false,
    metadata: {},
    inspection: null,
    uploaded_by_id: null,
    uploaded_at: now,
    created_at: now,
    updated_at: now,
  };
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export function problem(status: number, detail: string): Response {
  return new Response(JSON.stringify({ type: 'about:blank', title: `HTTP ${status}`, status, detail }), {
    status,
    headers: { 'Content-Type': 'application/problem+json' },
  });
}
