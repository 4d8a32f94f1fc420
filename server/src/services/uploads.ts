/** Chunked upload sessions. (Placeholder until the artifacts work lands: every call answers 501.) */
import { AppError, ErrorCode } from '../errors.ts';
import type { ServiceDeps } from './index.ts';

export const notYet = () => new AppError(501, ErrorCode.internal, 'Not Implemented', 'Artifact uploads are not available yet.');

export class UploadService {
  constructor(readonly deps: ServiceDeps) {}
}
