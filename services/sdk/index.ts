/**
 * The Sluice plugin SDK: the only module a plugin imports. A plugin written as plain JavaScript with no
 * import at all (a manifest plus a default export object of the same shape) loads just as well.
 */
export * from './errors.js';
export * from './schema.js';
export * from './types.js';
export * from './connector.js';
export * from './engine.js';
export * from './policy.js';
export * from './reconcile.js';
export * from './json.js';
export * from './secrets.js';
export * from './float-columns.js';
