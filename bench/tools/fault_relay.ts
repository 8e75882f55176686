/**
 * The bench's stand-in for netem between two kernels: opens two TAP
 * devices, passes every frame from one to the other through a FaultLine per
 * direction (the same impairment tapstackd --fault applies), and prints
 * "ready" once both are open. The bench then moves each TAP into its own
 * namespace (the open descriptors stay attached), so two kernel endpoints
 * talk through the same loss/delay/reorder/duplication the stack sees.
 *
 *   node fault_relay.js TAP_A TAP_B FAULT_SPEC SECONDS
 *
 * It exits after SECONDS (bounded), or on SIGTERM.
 */
import { TapDriver } from '../../src/drivers/tap.js';
import { FaultLine, parseFaultSpec } from '../../src/drivers/fault.js';
import { RealTime } from '../../src/lib/time.js';
import { CryptoRandom } from '../../src/lib/random.js';

const [nameA, nameB, specStr, secs] = process.argv.slice(2);
const spec = parseFaultSpec(specStr);
const time = new RealTime();
const random = new CryptoRandom();
const a = new TapDriver({ name: nameA, mtu: 1500 });
const b = new TapDriver({ name: nameB, mtu: 1500 });
const ab = new FaultLine(spec, time, random, (buf, off, len) => b.xmit(buf, off, len));
const ba = new FaultLine(spec, time, random, (buf, off, len) => a.xmit(buf, off, len));
a.start((buf, off, len) => ab.push(buf, off, len), (code) => console.error(`relay: ${nameA}: ${code}`));
b.start((buf, off, len) => ba.push(buf, off, len), (code) => console.error(`relay: ${nameB}: ${code}`));
const stop = () => {
  console.log(JSON.stringify({ ab: ab.stats, ba: ba.stats }));
  process.exit(0);
};
process.on('SIGTERM', stop);
setTimeout(stop, Number(secs) * 1000).unref();
// Keep the event loop alive until then.
setInterval(() => {}, 1 << 30);
console.log('ready');
