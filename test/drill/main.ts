/**
 * npm run drill -- [--ip_version=ipv4|ipv6|ipv4-mapped-ipv6] [--pcap FILE] [--tolerance_usecs=N] [--strict_segments] [--ignore-code] [-v] FILE...
 * (--ignore-code: diagnosis only, skips %{ }% blocks; such runs never count as passes)
 * Runs packetdrill scripts against the stack in packetdrill's three
 * variants, IPv4, IPv6 and ipv4-mapped-ipv6 (or the one --ip_version
 * names), and prints one line per run. With --pcap and several variants,
 * the first writes FILE and the others FILE with .<variant> before its
 * extension.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runScript, fmtOut, DRILL_FAMILIES, type DrillFamily, type RunOptions } from './run.js';

const files: string[] = [];
const opts: RunOptions = {};
let verbose = false;
let families: DrillFamily[] = [...DRILL_FAMILIES];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--pcap') opts.pcap = argv[++i];
  else if (a.startsWith('--pcap=')) opts.pcap = a.slice(7);
  else if (a.startsWith('--tolerance_usecs=')) opts.toleranceUsecs = Number(a.slice(18));
  else if (a === '--strict_segments') opts.strictSegments = true;
  else if (a.startsWith('--ip_version=') && DRILL_FAMILIES.includes(a.slice(13) as DrillFamily)) families = [a.slice(13) as DrillFamily];
  else if (a === '--ignore-code') opts.ignoreCode = true;
  else if (a === '-v' || a === '--verbose') verbose = true;
  else if (a.startsWith('-')) {
    console.error(`unknown option ${a}`);
    process.exit(2);
  } else files.push(a);
}
if (!files.length) {
  console.error('usage: npm run drill -- [--ip_version=ipv4|ipv6|ipv4-mapped-ipv6] [--pcap FILE] [--tolerance_usecs=N] [--strict_segments] [--ignore-code] [-v] FILE...');
  process.exit(2);
}
if (opts.pcap && files.length > 1) {
  console.error('--pcap takes one script');
  process.exit(2);
}
// The corpus runs Linux itself fails (test/drill/linux-fails.txt): reported as such, not counted as failures.
const linuxFailsFile = fileURLToPath(new URL('../../../test/drill/linux-fails.txt', import.meta.url));
const linuxFails = existsSync(linuxFailsFile)
  ? readFileSync(linuxFailsFile, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean)
  : [];
const failsOnLinux = (f: string, family: string) => linuxFails.some((k) => `${f.replace(/\\/g, '/')} (${family})`.endsWith(`/${k}`));
let failed = 0;
let linuxFailed = 0;
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
  for (const family of families) {
    const pcap = opts.pcap && family !== families[0] ? opts.pcap.replace(/(\.[^./]*)?$/, (ext) => `.${family}${ext}`) : opts.pcap;
    const { outcome, run } = runScript(src, f, { ...opts, pcap, family });
    if (outcome.status === 'pass') {
      passed++;
      console.log(`pass        ${f} (${family})`);
    } else if (outcome.status === 'fail' && failsOnLinux(f, family)) {
      linuxFailed++;
      console.log(`fail-linux  ${f} (${family}): fails on Linux too (test/drill/linux-fails.txt)\n${outcome.message.replace(/^/gm, '    ')}`);
    } else if (outcome.status === 'fail') {
      failed++;
      console.log(`fail        ${f} (${family})\n${outcome.message.replace(/^/gm, '    ')}`);
    } else {
      unsupported++;
      console.log(`unsupported ${f} (${family}): ${outcome.reason}`);
    }
    if (verbose && run) {
      if (outcome.status !== 'unsupported') for (const n of outcome.notes) console.log(`    note: ${n}`);
      for (const s of run.outLog) console.log(`    ${s.at.toFixed(6)} > ${fmtOut(s)}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${unsupported} unsupported${linuxFailed ? `, ${linuxFailed} failed as on Linux` : ''}`);
process.exit(failed ? 1 : 0);
