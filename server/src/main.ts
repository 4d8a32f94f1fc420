/**
 * Server entry point (`npm start`): read config, open the database (applying migrations) and
 * the artifact storage, create the default organization on an empty database, listen, and shut
 * down gracefully on SIGTERM/SIGINT.
 */
import type { AddressInfo } from 'node:net';
import { loadConfigOrExit } from './config.ts';
import { createLogger } from './logger.ts';
import { openOrm } from './persistence/orm.ts';
import { openBlobStore } from './storage/index.ts';
import { createApp } from './app.ts';
import { applyServerTimeouts } from './http/timeouts.ts';
import { answerClientErrors } from './http/client-errors.ts';
import { createServices, storageOptions } from './services/index.ts';
import { ensureFirstStart } from './services/admin.ts';


async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config);
  const orm = await openOrm({ databaseUrl: config.databaseUrl, logger });
  const storage = await openBlobStore(storageOptions(config));

  const firstKey = await ensureFirstStart(orm, logger);
  if (firstKey) {
    process.stdout.write(
      [
        '',
        '================================================================================',
        ' First start: created organization "default", space "default" and owner',
        ' admin@localhost. Its API key is shown once; store it now:',
        '',
        `   API key: ${firstKey.api_key}`,
        '',
        '================================================================================',
        '',
      ].join('\n') + '\n',
    );
  }

  const services = createServices({ config, orm, storage, logger });
  const app = createApp({ config, orm, storage, logger, services });
  const server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  applyServerTimeouts(server, config);
  answerClientErrors(server);
  const { port } = server.address() as AddressInfo;
  logger.info({ url: `http://${config.host}:${port}`, port, storage: config.storageBackend, database: config.database.dialect }, 'listening');
  services.sweeper.start();
  services.webhookWorker.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    services.sweeper.stop();
    // Attempts in flight finish (each within WEBHOOK_TIMEOUT_MS); claimed ones not started are handed back.
    const workerStopped = services.webhookWorker.stop().catch((err: unknown) => logger.warn({ err }, 'webhook worker did not stop cleanly'));
    const force = setTimeout(() => {
      logger.warn('requests still running after 30 s; closing their connections');
      server.closeAllConnections();
    }, 30_000);
    force.unref();
    server.close(async () => {
      clearTimeout(force);
      await services.inspections.idle(); // background header reads write their result first
      await workerStopped;
      await orm.close();
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`model-repository failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
