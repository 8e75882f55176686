/**
 * preload.test.ts once more with the library reading stream sockets
 * through their down rings (TAPSTACK_PRELOAD_RINGS=1, RING_LEVEL: docs/api.md
 * "Data rings"): every program there (curl, nc, socat, python under asyncio
 * and selectors, forks, nginx) must behave the same.
 */
process.env.TAPSTACK_PRELOAD_RINGS = '1';
await import('./preload.test.js');
