/** True in Node (and runtimes that present themselves as Node), where node: modules can be loaded. */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

// The node: modules are loaded with dynamic imports marked `webpackIgnore`, only when `isNode`, so
// browser bundles neither include nor fail on them.
