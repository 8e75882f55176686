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
 * Knuth's multiplicative constant: the kernel's ephemeral ports come in steps of two, a sum would keep their
 * parity. The remote port is the low half (all its bits reach the product's top), the local port the high
 * half (it shifts the result by a bijection of itself, so some local port lands on any queue).
 */
const GOLDEN = 0x9e3779b1;

/** The queue of a flow whose kernel-side port is `remotePort` and whose port on the stack is `localPort`, among `queues`. */
export function steerQueue(remotePort: number, localPort: number, queues: number): number {
  return (Math.imul(((localPort & 0xffff) << 16) | (remotePort & 0xffff), GOLDEN) >>> 16) % queues;
}
