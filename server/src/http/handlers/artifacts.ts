/** Artifact operations. (Placeholder until the artifacts work lands: 501.) */
import type { Services } from '../../services/index.ts';
import { notYet } from '../../services/uploads.ts';
import type { Handler } from '../types.ts';

export function artifactHandlers(_services: Services) {
  const pending: Handler = async () => {
    throw notYet();
  };
  return {
    listModelArtifacts: pending,
    getModelArtifact: pending,
    createModelArtifact: pending,
    downloadModelArtifact: pending,
    headModelArtifact: pending,
    deleteModelArtifact: pending,
  };
}
