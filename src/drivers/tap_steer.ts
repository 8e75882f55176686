/**
 * The queue the multi-queue TAP's steering program (native/tap_steer.c)
 * gives a frame from the kernel, computed on our side: a shard that opens a
 * connection picks a local port with `steerQueue(remote, local, n)` equal
 * to its own queue, and every frame of the flow comes back to it, however
 * long the flow is silent (tun's own table forgets after 3 s).
 *
 * The program hashes TCP and UDP ports (an ICMP error by the ports it
 * quotes); every other frame goes to queue 0 (docs/shards.md).
 */

/**
 * Two multiplies with a fold between (the program's own steps): the low bits of one product depend only on the
 * low bits of its factor, and tun takes the result modulo the queue count, so a single multiply would tie the
 * queue to a port's parity (the kernel's ephemeral ports come in steps of two; a shard picking a local port
 * would skip half the range first).
 */
const K1 = 0x9e3779b1;
const K2 = 0x85ebca6b;

/** The queue of a flow whose kernel-side port is `remotePort` and whose port on the stack is `localPort`, among `queues`. */
export function steerQueue(remotePort: number, localPort: number, queues: number): number {
  let h = Math.imul(((localPort & 0xffff) << 16) | (remotePort & 0xffff), K1);
  h ^= h >>> 16;
  return (Math.imul(h, K2) >>> 16) % queues;
}
