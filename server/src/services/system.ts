/**
 * Readiness: the database and the storage must both answer, each within a short deadline.
 */
import type { ServiceDeps } from './index.ts';

type Check = 'ok' | 'unavailable';
const DEADLINE_MS = 2000;

async function probe(fn: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), DEADLINE_MS);
      }),
    ]);
    return 'ok';
  } catch {
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

export class SystemService {
  constructor(private readonly deps: ServiceDeps) {}

  async readiness(): Promise<{ database: Check; storage: Check }> {
    const [database, storage] = await Promise.all([
      probe(() => this.deps.orm.em.fork().execute('select 1')),
      probe(() => this.deps.storage.ping()),
    ]);
    return { database, storage };
  }
}
