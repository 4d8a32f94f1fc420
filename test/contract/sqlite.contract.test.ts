/** The contract scenarios against the real server on SQLite + filesystem storage: behaviour, every response within the spec. */
import { startServerTarget } from './harness.ts';
import { defineContractSuite } from './suite.ts';

defineContractSuite('sqlite', { start: () => startServerTarget('sqlite') });
