/** Stored artifacts. (Placeholder until the artifacts work lands.) */
import type { ServiceDeps } from './index.ts';

export class ArtifactService {
  constructor(readonly deps: ServiceDeps) {}
}
