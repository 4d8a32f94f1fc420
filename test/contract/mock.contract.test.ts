/** The contract scenarios against the Prism mock of the spec: statuses and shapes. */
import { startMockTarget } from './harness.ts';
import { defineContractSuite } from './suite.ts';

defineContractSuite('mock', { start: startMockTarget });
