#!/usr/bin/env node
// What the build and the tests need from the system, and the one place that installs it.
//   node test/deps.js build      check the addon's build tools (npm install's preinstall): one line and exit 1 if any is missing
//   node test/deps.js tests      as root: install what the integration tests need (apt-get, once); else say what is missing
//   node test/deps.js install    as root: install both (.ci/run, before npm ci)
// Plain JavaScript, no dependencies: it runs before npm install has built anything.
import { spawnSync } from 'node:child_process';

/** Command -> the Debian package that provides it. */
const BUILD = { python3: 'python3', make: 'make', 'g++': 'g++' };
const TESTS = {
  ip: 'iproute2',
  tc: 'iproute2',
  ping: 'iputils-ping',
  arping: 'arping',
  tcpdump: 'tcpdump',
  tshark: 'tshark',
  curl: 'curl',
  nc: 'netcat-openbsd',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  socat: 'socat',
  nginx: 'nginx-light',
  python3: 'python3',
  // tapstack plot's SVG and HTML, drawn headless (test/integration/plot.test.ts).
  chromium: 'chromium',
};

const have = (cmd) => spawnSync('sh', ['-c', `command -v '${cmd}'`], { stdio: 'ignore' }).status === 0;
const missing = (table) => [...new Set(Object.keys(table).filter((c) => !have(c)).map((c) => table[c]))].sort();
const isRoot = process.getuid?.() === 0;

function aptInstall(pkgs, why) {
  if (!have('apt-get')) {
    console.error(`tapstack: ${why} need ${pkgs.join(' ')}, and this system has no apt-get: install them with its package manager`);
    process.exit(1);
  }
  console.log(`tapstack: installing ${pkgs.join(' ')} (apt-get) for ${why}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) {
      console.error(`tapstack: apt-get ${args[0]} failed (status ${r.status}); run: apt-get install ${pkgs.join(' ')}`);
      process.exit(1);
    }
  }
}

const mode = process.argv[2];
if (mode === 'build') {
  const m = missing(BUILD);
  if (m.length) {
    console.error(`tapstack: building the TAP addon (node-gyp) needs python3, make and g++; missing: ${m.join(' ')}. Run: sudo apt-get install -y ${m.join(' ')}`);
    process.exit(1);
  }
} else if (mode === 'tests' || mode === 'install') {
  const m = missing(mode === 'install' ? { ...BUILD, ...TESTS } : TESTS);
  const why = mode === 'install' ? 'the build and the integration tests' : 'the integration tests';
  if (m.length && isRoot) aptInstall(m, why);
  else if (m.length) {
    // Without root the integration tests skip anyway (under CI=true that is a failure of its own).
    console.error(`tapstack: ${why} need ${m.join(' ')}: sudo apt-get install -y ${m.join(' ')}`);
    if (mode === 'install') process.exit(1);
  }
} else {
  console.error('usage: node test/deps.js build|tests|install');
  process.exit(2);
}
