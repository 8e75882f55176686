/**
 * The tapstack package: the client library (src/client) for programs that
 * use a running tapstackd. The stack itself runs in the daemon.
 */
export * from './client/index.js';
