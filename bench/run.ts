/**
 * `npm run bench`: every figure measured in this run, next to the Linux
 * kernel doing the same work, as a ratio (the machines are shared and
 * noisy: a bare time means little, a same-run ratio does).
 *
 *   - bulk TCP kernel -> stack (discard, port 9) vs kernel -> kernel over veth
 *   - bulk TCP stack -> kernel (GET /bytes/N)   vs kernel -> kernel over veth
 *   - established-hash lookup at 1 / 1 000 / 100 000 connections
 *   - goodput stack -> kernel under loss 1% and 20 ms delay (tapstackd --fault)
 *     vs kernel -> kernel through the same FaultLine (bench/tools/fault_relay:
 *     two TAPs, one per namespace, bridged in-process), since this kernel has
 *     no sch_netem. BENCH_FAULT changes the impairment, BENCH_FAULT_BYTES the
 *     size; BENCH_FAULT_ONLY=1 runs just this part.
 *
 * Everything that sends packets runs in namespaces created here and removed
 * on exit, with every transfer bounded in size and time. Needs root.
 * Results also go to bench/results.json.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, ROOT, integrationUnavailable } from '../test/integration/netns.js';
import { benchLookup } from './lookup.js';

const TOOLS = join(ROOT, 'bench', 'tools');
const BYTES = Number(process.env.BENCH_BYTES ?? 256 * 1024 * 1024);
const TIMEOUT_S = 120;

interface Bulk {
  name: string;
  stackGbps: number;
  kernelGbps: number;
  ratio: number;
}

function gbps(bytes: number, seconds: number): number {
  return (bytes * 8) / seconds / 1e9;
}

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function sourceRun(ns: Netns, host: string, port: number): number {
  const out = ns.ok(`python3 ${TOOLS}/tcp_source.py ${host} ${port} ${BYTES} ${TIMEOUT_S}`, (TIMEOUT_S + 10) * 1000);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { bytes: number; seconds: number };
  return gbps(r.bytes, r.seconds);
}

function curlRun(ns: Netns, url: string, bytes = BYTES): number {
  const out = ns.ok(`curl -sS --max-time ${TIMEOUT_S} -o /dev/null -w '%{size_download} %{time_total}' ${url}`, (TIMEOUT_S + 10) * 1000);
  const [size, secs] = out.trim().split(/\s+/).map(Number);
  if (size !== bytes) throw new Error(`${url}: got ${size} bytes, expected ${bytes}`);
  return gbps(size, secs);
}

const FAULT = process.env.BENCH_FAULT ?? 'loss=1%,delay=20ms';
const FAULT_BYTES = Number(process.env.BENCH_FAULT_BYTES ?? 16 * 1024 * 1024);
const RELAY = join(ROOT, 'dist', 'bench', 'tools', 'fault_relay.js');

interface FaultBench {
  fault: string;
  bytes: number;
  stackMbps: number;
  kernelMbps: number;
  ratio: number;
}

/** Goodput of GET /bytes/N under the impairment: the stack as sender, then kernel to kernel through the relay. */
async function faultBench(spaces: Netns[]): Promise<FaultBench> {
  const st = new Netns('benchf');
  spaces.push(st);
  const d = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--log-level', 'info', '--fault', FAULT]);
  const stackMbps = curlRun(st, `http://10.0.0.2/bytes/${FAULT_BYTES}`, FAULT_BYTES) * 1000;
  await d.stop();

  const r = new Netns('benchr');
  const a = new Netns('benchfa');
  const b = new Netns('benchfb');
  spaces.push(r, a, b);
  const relay = r.background(`${process.execPath} ${RELAY} fa fb ${FAULT} ${TIMEOUT_S * 2}`);
  await waitListening(relay, 'ready');
  // The descriptors stay attached while the devices move to the two kernels' namespaces.
  r.ok(`ip link set fa netns ${a.name} && ip link set fb netns ${b.name}`);
  a.ok('ip addr add 10.8.0.1/24 dev fa && ip link set fa up');
  b.ok('ip addr add 10.8.0.2/24 dev fb && ip link set fb up');
  const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.8.0.2 80`);
  await waitListening(http);
  const kernelMbps = curlRun(a, `http://10.8.0.2/bytes/${FAULT_BYTES}`, FAULT_BYTES) * 1000;
  return { fault: FAULT, bytes: FAULT_BYTES, stackMbps, kernelMbps, ratio: stackMbps / kernelMbps };
}

async function waitListening(p: ReturnType<Netns['background']>, word = 'listening'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server did not start')), 10_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes(word)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function main(): Promise<void> {
  const why = integrationUnavailable();
  if (why) {
    console.error(`bench: ${why.replace('integration tests', 'the bench')}`);
    process.exit(1);
  }
  const results: Record<string, unknown> = { date: new Date().toISOString(), bytes: BYTES };
  const bulk: Bulk[] = [];
  const spaces: Netns[] = [];
  const cleanup = () => spaces.forEach((n) => n.destroy());
  process.on('exit', cleanup);
  let fb: FaultBench | null = null;
  try {
    fb = await faultBench(spaces);
  } finally {
    cleanup();
    spaces.length = 0;
  }
  results.fault = fb;
  const printFault = () => {
    console.log(`\ngoodput under ${fb!.fault} (${(fb!.bytes / 1048576).toFixed(0)} MiB GET /bytes/N; kernel = Linux to Linux through the same fault line, same run)\n`);
    console.log('| sender | tapstack Mbit/s | kernel Mbit/s | ratio |');
    console.log('| --- | ---: | ---: | ---: |');
    console.log(`| stack -> kernel | ${fmt(fb!.stackMbps, 1)} | ${fmt(fb!.kernelMbps, 1)} | ${fmt(fb!.ratio, 3)} |`);
  };
  if (process.env.BENCH_FAULT_ONLY === '1') {
    printFault();
    return;
  }
  try {
    // The stack on a TAP, the kernel on the other side of it.
    const st = new Netns('bench');
    spaces.push(st);
    const daemon = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--log-level', 'info']);
    // The kernel twice, over a veth pair between two namespaces.
    const a = new Netns('bencha');
    const b = new Netns('benchb');
    spaces.push(a, b);
    a.ok(`ip link add va type veth peer name vb netns ${b.name}`);
    a.ok('ip addr add 10.9.0.1/24 dev va && ip link set va up');
    b.ok('ip addr add 10.9.0.2/24 dev vb && ip link set vb up');
    const sink = b.background(`python3 ${TOOLS}/tcp_sink.py 10.9.0.2 9`);
    const http = b.background(`python3 ${TOOLS}/bytes_http.py 10.9.0.2 80`);
    await waitListening(sink);
    await waitListening(http);

    const k2sStack = sourceRun(st, '10.0.0.2', 9);
    const k2sKernel = sourceRun(a, '10.9.0.2', 9);
    bulk.push({ name: 'bulk kernel -> stack (discard)', stackGbps: k2sStack, kernelGbps: k2sKernel, ratio: k2sStack / k2sKernel });
    const s2kStack = curlRun(st, `http://10.0.0.2/bytes/${BYTES}`);
    const s2kKernel = curlRun(a, `http://10.9.0.2/bytes/${BYTES}`);
    bulk.push({ name: 'bulk stack -> kernel (GET /bytes/N)', stackGbps: s2kStack, kernelGbps: s2kKernel, ratio: s2kStack / s2kKernel });
    await daemon.stop();
  } finally {
    cleanup();
  }
  results.bulk = bulk;

  const lookup = await benchLookup();
  results.lookup = lookup;

  console.log(`\ntapstack bench (${(BYTES / 1048576).toFixed(0)} MiB per transfer; kernel = Linux over veth, same run)\n`);
  console.log('| transfer | tapstack Gbit/s | kernel Gbit/s | ratio |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of bulk) console.log(`| ${r.name} | ${fmt(r.stackGbps)} | ${fmt(r.kernelGbps)} | ${fmt(r.ratio, 3)} |`);
  const base = lookup[0].nsPerLookup;
  console.log('\n| established sockets | ns per lookup | ratio to 1 |');
  console.log('| ---: | ---: | ---: |');
  for (const l of lookup) console.log(`| ${l.n} | ${fmt(l.nsPerLookup, 1)} | ${fmt(l.nsPerLookup / base, 2)} |`);
  printFault();
  mkdirSync(join(ROOT, 'bench'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
  console.log('\nresults: bench/results.json');
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
