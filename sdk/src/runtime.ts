/** True in Node (and runtimes that present themselves as Node), where node: modules can be loaded. */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
