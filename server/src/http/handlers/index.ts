/**
 * operationId → handler. The HandlerTable type makes a missing operation a compile error.
 */
import type { Config } from '../../config.ts';
import type { Services } from '../../services/index.ts';
import type { HandlerTable } from '../types.ts';
import { modelHandlers } from './models.ts';
import { versionHandlers } from './versions.ts';
import { aliasHandlers } from './aliases.ts';
import { artifactHandlers } from './artifacts.ts';
import { uploadHandlers } from './uploads.ts';
import { eventHandlers } from './events.ts';
import { webhookHandlers } from './webhooks.ts';

/** Served by the app before the validator; listed so the table covers the whole spec. */
const servedEarlier = async (): Promise<void> => {
  throw new Error('unreachable: served before the dispatcher');
};

export function createHandlerTable(services: Services, config: Config): HandlerTable {
  return {
    ...modelHandlers(services, config),
    ...versionHandlers(services),
    ...aliasHandlers(services),
    ...artifactHandlers(services),
    ...uploadHandlers(services, config),
    ...eventHandlers(services),
    ...webhookHandlers(services),
    getOpenApiDocument: servedEarlier,
    getHealth: servedEarlier,
    getReadiness: servedEarlier,
  };
}
