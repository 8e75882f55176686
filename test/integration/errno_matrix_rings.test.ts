/** errno_matrix.test.ts once more with the LD_PRELOAD library reading through rings (TAPSTACK_PRELOAD_RINGS=1; see preload_rings.test.ts). */
process.env.TAPSTACK_PRELOAD_RINGS = '1';
await import('./errno_matrix.test.js');
