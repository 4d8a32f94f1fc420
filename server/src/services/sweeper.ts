/** Background sweep of expired upload sessions. (Placeholder until the artifacts work lands.) */
import type { ServiceDeps } from './index.ts';

export class Sweeper {
  constructor(readonly deps: ServiceDeps) {}
  start(): void {}
  stop(): void {}
}
