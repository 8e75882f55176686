/**
 * ss(8)'s filter language as `tapstack trace` takes it: ports with every
 * operator spelling, addresses with prefixes and ports in both families
 * (a v4-mapped address matched as IPv4), states and their groups, the
 * boolean operators with ss's precedence, and one clear error for each
 * kind of bad filter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSsFilter, SsFilterError, type SsFilterSock } from '../../src/lib/ss_filter.js';
import { parseIpv6 } from '../../src/lib/addr.js';

function v4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map(Number));
}

const a: SsFilterSock = { state: 'ESTABLISHED', family: 4, src: v4('10.0.0.2'), dst: v4('10.0.0.1'), sport: 80, dport: 40000 };
const b: SsFilterSock = { state: 'LISTEN', family: 6, src: parseIpv6('fd00::2')!, dst: parseIpv6('::')!, sport: 8080, dport: 0 };
const c: SsFilterSock = { state: 'TIME-WAIT', family: 4, src: v4('10.0.0.2'), dst: v4('192.168.1.7'), sport: 40001, dport: 443 };

function takes(f: string): string {
  const p = compileSsFilter(f);
  return [a, b, c].map((s) => (p(s) ? '1' : '0')).join('');
}

test('ports: every operator spelling, with or without the colon', () => {
  assert.equal(takes('sport = :80'), '100');
  assert.equal(takes('sport == 80'), '100');
  assert.equal(takes('sport eq :80'), '100');
  assert.equal(takes('dport != :443'), '110');
  assert.equal(takes('dport neq :443'), '110');
  assert.equal(takes('dport > :1024'), '100');
  assert.equal(takes('dport gt :1024'), '100');
  assert.equal(takes('dport >= :443'), '101');
  assert.equal(takes('sport < :1024'), '100');
  assert.equal(takes('sport <= :8080'), '110');
  assert.equal(takes('sport le :8080'), '110');
  assert.equal(takes('dport ge :443'), '101');
  assert.equal(takes('dport=:443'), '001', 'operators need no spaces');
  assert.equal(takes('dport :443'), '001', 'no operator is =');
});

test('addresses: exact, prefixes, ports, IPv6 in brackets, v4-mapped as IPv4, and *', () => {
  assert.equal(takes('src 10.0.0.2'), '101');
  assert.equal(takes('dst 10.0.0.0/24'), '100');
  assert.equal(takes('dst 192.168.0.0/16'), '001');
  assert.equal(takes('src 10.0.0.2:80'), '100');
  assert.equal(takes('src *:8080'), '010');
  assert.equal(takes('src fd00::2'), '010');
  assert.equal(takes('src [fd00::2]:8080'), '010');
  assert.equal(takes('src [fd00::]/64'), '010');
  assert.equal(takes('src fd00::/8'), '010');
  assert.equal(takes('dst ::ffff:192.168.1.7'), '001');
  assert.equal(takes('dst [::ffff:10.0.0.1]:40000'), '100');
  assert.equal(takes('src 10.0.0.2:*'), '101');
});

test('states and groups', () => {
  assert.equal(takes('state established'), '100');
  assert.equal(takes('state listening'), '010');
  assert.equal(takes('state time-wait'), '001');
  assert.equal(takes('state connected'), '101');
  assert.equal(takes('state synchronized'), '101');
  assert.equal(takes('state all'), '111');
});

test('and binds tighter than or; not; parentheses; side by side is and', () => {
  assert.equal(takes(''), '111', 'no filter: every socket');
  assert.equal(takes('src 10.0.0.2 and dport = :443'), '001');
  assert.equal(takes('src 10.0.0.2 dport = :443'), '001');
  assert.equal(takes('src 10.0.0.2 && dport = :443'), '001');
  assert.equal(takes('sport = :80 or sport = :8080 and state time-wait'), '100');
  assert.equal(takes('( sport = :80 or sport = :8080 ) and state listening'), '010');
  assert.equal(takes('(sport = :80 || sport = :8080) && !state listening'), '100');
  assert.equal(takes('not src 10.0.0.2'), '010');
  assert.equal(takes('! ! src 10.0.0.2'), '101');
});

test('a bad filter is one error that names what is wrong', () => {
  const bad: [string, RegExp][] = [
    ['dport = :http', /dport: "http" is not a port/],
    ['sport = :70000', /not a port/],
    ['src 10.0.0.300', /not an IPv4 or IPv6 address/],
    ['src 10.0.0.0/33', /bad prefix length/],
    ['state sleepy', /state: "sleepy" is not one of/],
    ['( src 10.0.0.1', /"\)" is missing|not closed/],
    ['src 10.0.0.1 )', /unexpected "\)"/],
    ['port 80', /"port" is not a filter word/],
    ['dport =', /a port after "dport" is missing/],
    ['src [::1', /no closing \]/],
  ];
  for (const [f, re] of bad) assert.throws(() => compileSsFilter(f), (e: unknown) => e instanceof SsFilterError && re.test((e as Error).message), f);
});
