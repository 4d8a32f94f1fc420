/** Upload session operations. (Placeholder until the artifacts work lands: 501.) */
import type { Services } from '../../services/index.ts';
import { notYet } from '../../services/uploads.ts';
import type { Handler } from '../types.ts';

export function uploadHandlers(_services: Services) {
  const pending: Handler = async () => {
    throw notYet();
  };
  return {
    initiateArtifactUpload: pending,
    getArtifactUpload: pending,
    abortArtifactUpload: pending,
    uploadArtifactChunk: pending,
    completeArtifactUpload: pending,
  };
}
