export * from './api-keys.ts';
export * from './policy.ts';
