/**
 * npm run drill -- [--pcap FILE] [--tolerance_usecs=N] [--strict_segments] [--ignore-code] [-v] FILE...
 * (--ignore-code: diagnosis only, skips %{ }% blocks; such runs never count as passes)
 * Runs packetdrill scripts against the stack (IPv4; IPv6 is reported
 * unsupported until the stack has it) and prints one line per run.
 */
import { readFileSync } from 'node:fs';
import { runScript, fmtOut, type RunOptions } from './run.js';

const files: string[] = [];
const opts: RunOptions = {};
let verbose = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--pcap') opts.pcap = argv[++i];
  else if (a.startsWith('--pcap=')) opts.pcap = a.slice(7);
  else if (a.startsWith('--tolerance_usecs=')) opts.toleranceUsecs = Number(a.slice(18));
  else if (a === '--strict_segments') opts.strictSegments = true;
  else if (a === '--ignore-code') opts.ignoreCode = true;
  else if (a === '-v' || a === '--verbose') verbose = true;
  else if (a.startsWith('-')) {
    console.error(`unknown option ${a}`);
    process.exit(2);
  } else files.push(a);
}
if (!files.length) {
  console.error('usage: npm run drill -- [--pcap FILE] [--tolerance_usecs=N] [--strict_segments] [--ignore-code] [-v] FILE...');
  process.exit(2);
}
if (opts.pcap && files.length > 1) {
  console.error('--pcap takes one script');
  process.exit(2);
}
let failed = 0;
let passed = 0;
let unsupported = 0;
for (const f of files) {
  let src: string;
  try {
    src = readFileSync(f, 'utf8');
  } catch (e) {
    console.log(`fail        ${f}: cannot read: ${(e as Error).message}`);
    failed++;
    continue;
  }
  const { outcome, run } = runScript(src, f, opts);
  if (outcome.status === 'pass') {
    passed++;
    console.log(`pass        ${f} (ipv4)`);
  }
  else if (outcome.status === 'fail') {
    failed++;
    console.log(`fail        ${f} (ipv4)\n${outcome.message.replace(/^/gm, '    ')}`);
  } else {
    unsupported++;
    console.log(`unsupported ${f} (ipv4): ${outcome.reason}`);
  }
  unsupported++;
  console.log(`unsupported ${f} (ipv6): IPv6 TCP not in the stack yet`);
  if (verbose && run) {
    if (outcome.status !== 'unsupported') for (const n of outcome.notes) console.log(`    note: ${n}`);
    for (const s of run.outLog) console.log(`    ${s.at.toFixed(6)} > ${fmtOut(s)}`);
  }
}
console.log(`${passed} passed, ${failed} failed, ${unsupported} unsupported`);
process.exit(failed ? 1 : 0);
