/**
 * The contract scenarios against the real server on PostgreSQL + S3 (a local s3rver): behaviour,
 * every response within the spec. Unreachable PostgreSQL skips this file loudly, unless
 * REQUIRE_POSTGRES=1 (then createTestDatabase throws and the file fails).
 */
import { createTestDatabase } from '../support/postgres.ts';
import { startServerTarget } from './harness.ts';
import { defineContractSuite } from './suite.ts';

const database = await createTestDatabase();

defineContractSuite('postgres', {
  start: database ? () => startServerTarget('postgres', database) : null,
  skipReason: 'PostgreSQL is not reachable (set DATABASE_URL_TEST, or REQUIRE_POSTGRES=1 to fail instead)',
  cleanup: async () => database?.drop(),
});
