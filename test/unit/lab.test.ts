/**
 * tapstack lab: scenario files checked key by key; runs that repeat
 * exactly for a seed; the simulator against what theory says of it (one
 * flow fills the bottleneck, two identical flows share it fairly, a
 * drop-tail queue never holds more than its buffer, CoDel holds the
 * standing queue near its target, a short-RTT flow beats a long-RTT one);
 * and the command printing its table and writing its files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario, parseScenarioText, ScenarioError, type Scenario } from '../../src/lab/scenario.js';
import { Lab } from '../../src/lab/sim.js';
import { flowPlotData, formatTable, goodputLines, jainIndex, summarize } from '../../src/lab/report.js';
import { LabError, runLab } from '../../src/cli/lab.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** A scenario object: two CUBIC flows over 10 Mbit/s, 40 ms, one BDP of drop-tail buffer; `over` replaces parts. */
function base(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 't',
    duration: 10,
    seed: 3,
    bottleneck: { rate_mbit: 10, qdisc: 'droptail', buffer_bdp: 1 },
    path: { rtt_ms: 40 },
    flows: [
      { name: 'a', cc: 'cubic', start: 0 },
      { name: 'b', cc: 'cubic', start: 0.5 },
    ],
    ...over,
  };
}

const run = (s: Scenario) => {
  const rec = new Lab(s).run();
  return { rec, res: summarize(rec) };
};

function scenarioError(v: unknown): string {
  try {
    const sc = parseScenario(v);
    new Lab(sc);
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.message;
  }
  assert.fail('no error');
}

test('scenario: unknown keys, wrong types and out-of-range values are named by their key path', () => {
  assert.match(scenarioError(base({ durration: 5 })), /^durration: unknown key/);
  assert.match(scenarioError(base({ duration: '10' })), /^duration: must be a number of seconds > 0/);
  assert.match(scenarioError(base({ duration: 0 })), /^duration: must be/);
  assert.match(scenarioError(base({ flows: [{ cc: 'cubic' }, { cc: 'cubic', start: -1 }] })), /^flows\[1\]\.start: must be a number of seconds ≥ 0$/);
  assert.match(scenarioError(base({ flows: [{ cc: 'cubic', colour: 'red' }] })), /^flows\[0\]\.colour: unknown key \(known here: name, cc, start, bytes, rtt_ms, ecn\)/);
  assert.match(scenarioError(base({ flows: [{ cc: 'cubic', bytes: 1.5 }] })), /^flows\[0\]\.bytes: must be a whole number of bytes/);
  assert.match(scenarioError(base({ flows: [{ cc: 'cubic', start: 10 }] })), /^flows\[0\]\.start: must be before the end of the run/);
  assert.match(scenarioError(base({ flows: [{ name: 'x' }, { name: 'x' }] })), /^flows\[1\]\.name: "x" is used by an earlier flow/);
  assert.match(scenarioError(base({ flows: [] })), /^flows: must be an array of at least one flow/);
  assert.match(scenarioError(base({ bottleneck: { rate_mbit: 10, qdisc: 'droptail' } })), /^bottleneck: droptail needs its buffer/);
  assert.match(scenarioError(base({ bottleneck: { rate_mbit: 10, qdisc: 'red', buffer_packets: 5 } })), /^bottleneck\.qdisc: must be one of droptail, codel, fq_codel/);
  assert.match(scenarioError(base({ bottleneck: { rate_mbit: 10, buffer_packets: 5, buffer_bytes: 9000 } })), /^bottleneck\.buffer_bytes: give one of/);
  assert.match(scenarioError(base({ bottleneck: { rate_mbit: 10, buffer_packets: 5, target_ms: 5 } })), /^bottleneck\.target_ms: only for codel and fq_codel/);
  assert.match(scenarioError(base({ bottleneck: { rate_mbit: -1, buffer_packets: 5 } })), /^bottleneck\.rate_mbit: must be a rate in Mbit\/s > 0/);
  assert.match(scenarioError(base({ path: { loss: 2 } })), /^path\.loss: must be a probability from 0 to 0\.5/);
  assert.match(scenarioError(base({ cross: [{ kind: 'cbr', rate_mbit: 1, on_s: 1 }] })), /^cross\[0\]\.on_s: only for kind onoff/);
  assert.match(scenarioError(base({ cross: [{ rate_mbit: 1, start: 5, stop: 2 }] })), /^cross\[0\]\.stop: must be a number of seconds after start/);
  assert.match(scenarioError([]), /the scenario must be a JSON object/);
  assert.throws(() => parseScenarioText('{"name": '), (e: Error) => e instanceof ScenarioError && /^not JSON/.test(e.message));
});

test('scenario: a congestion control the stacks lack is refused, naming the key and listing what there is', () => {
  const msg = scenarioError(base({ flows: [{ cc: 'cubic' }, { cc: 'nosuchcc' }] }));
  assert.match(msg, /^flows\[1\]\.cc: "nosuchcc" is not an available congestion control \(available: .*\breno\b.*\)$/);
  assert.match(msg, /\bcubic\b/);
});

test('scenario: defaults, buffer in BDPs, and the example files all parse', () => {
  const s = parseScenario(base());
  assert.equal(s.bottleneck.limitBytes, 50_000, '10 Mbit/s x 40 ms');
  assert.equal(s.flows[1].rttMs, 40);
  assert.equal(s.flows[0].bytes, Infinity);
  assert.equal(parseScenario(base({ bottleneck: { rate_mbit: 10, qdisc: 'fq_codel' } })).bottleneck.limitPackets, 10240);
  assert.equal(parseScenario(base(), 99).seed, 99, "the command line's seed wins");
  const dir = join(ROOT, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  for (const f of ['two-cubic.json', 'cubic-vs-bbr.json', 'shallow-buffer.json', 'rtt-unfair.json']) assert.ok(files.includes(f), f);
  for (const f of files) parseScenarioText(readFileSync(join(dir, f), 'utf8'));
});

test('lab: the same scenario and seed give the same results and plots; another seed another run', () => {
  const sc = () =>
    parseScenario(
      base({
        duration: 6,
        bottleneck: { rate_mbit: 10, qdisc: 'fq_codel' },
        path: { rtt_ms: 30, loss: 0.002, reorder: 0.01, reorder_delay_ms: 3 },
        cross: [{ kind: 'onoff', rate_mbit: 2, on_s: 0.5, off_s: 0.5 }],
        flows: [
          { name: 'a', cc: 'cubic' },
          { name: 'b', cc: 'reno', start: 1, ecn: true },
        ],
      }),
    );
  const one = run(sc());
  const two = run(sc());
  assert.deepEqual(two.res, one.res);
  assert.equal(formatTable(two.res), formatTable(one.res));
  assert.deepEqual(flowPlotData(two.rec, 1), flowPlotData(one.rec, 1));
  assert.deepEqual(two.rec.queue.out, one.rec.queue.out);
  assert.ok(one.res.flows.every((f) => f.received > 0 && f.wire_lost > 0 && f.reordered > 0), JSON.stringify(one.res.flows));
  assert.ok(one.res.cross[0].sent > 0);
  const other = sc();
  other.seed = 4;
  assert.notDeepEqual(run(other).res.flows, one.res.flows);
});

test('lab: one Reno flow alone fills the bottleneck (goodput ≥ 90% of the rate); its RTT is the base RTT plus its queue', () => {
  const { res } = run(parseScenario(base({ duration: 20, flows: [{ name: 'r', cc: 'reno' }] })));
  const f = res.flows[0];
  assert.ok(f.goodput_mbit >= 9, `goodput ${f.goodput_mbit} Mbit/s of 10`);
  assert.ok(res.bottleneck.utilization >= 0.95, `utilization ${res.bottleneck.utilization}`);
  // RTT samples: 40 ms of propagation, plus serialization and up to a full buffer (40 ms) of queueing.
  assert.ok(f.rtt_ms.p50! > 40 && f.rtt_ms.p99! < 40 + 40 + 10, JSON.stringify(f.rtt_ms));
  assert.equal(f.share, 1);
});

test('lab: two identical CUBIC flows share the bottleneck fairly (Jain ≥ 0.9); drop-tail never holds more than its buffer', () => {
  const { res, rec } = run(parseScenario(base({ duration: 40, bottleneck: { rate_mbit: 10, qdisc: 'droptail', buffer_packets: 30 } })));
  assert.ok(res.jain_index >= 0.9, `Jain ${res.jain_index}: ${res.flows.map((f) => f.goodput_mbit)}`);
  assert.ok(res.bottleneck.utilization > 0.9);
  assert.ok(rec.maxQueuePackets <= 30 && rec.maxQueuePackets >= 29, `max queue ${rec.maxQueuePackets}`);
  assert.ok(res.bottleneck.overlimit_drops > 0, 'the flows filled the buffer');
  for (let i = 1; i < rec.queue.out.length; i += 2) assert.ok((rec.queue.out[i] as number) <= 30);
  const b = run(parseScenario(base({ duration: 8, bottleneck: { rate_mbit: 10, qdisc: 'droptail', buffer_bytes: 20000 } })));
  assert.ok(b.rec.maxQueueBytes <= 20000 && b.rec.maxQueueBytes > 20000 - 1514, `max ${b.rec.maxQueueBytes} bytes`);
});

test('lab: CoDel holds the standing queue near its 5 ms target where drop-tail lets it fill a deep buffer', () => {
  const deep = { rate_mbit: 10, buffer_packets: 300 };
  const sc = (q: object) => parseScenario(base({ duration: 30, bottleneck: { ...deep, ...q }, flows: [{ name: 'c', cc: 'cubic' }] }));
  const codel = run(sc({ qdisc: 'codel' })).res;
  const tail = run(sc({ qdisc: 'droptail' })).res;
  const qc = codel.flows[0].queue_delay_ms;
  const qt = tail.flows[0].queue_delay_ms;
  assert.ok(qc.p50! <= 10, `CoDel's median sojourn ${qc.p50} ms`);
  assert.ok(qt.p50! > 5 * qc.p50!, `drop-tail's median sojourn ${qt.p50} ms against CoDel's ${qc.p50} ms`);
  assert.ok(codel.bottleneck.aqm_drops > 0 && codel.bottleneck.overlimit_drops === 0);
  assert.ok(codel.bottleneck.utilization > 0.85, `CoDel kept the link busy: ${codel.bottleneck.utilization}`);
});

test('lab: a sized flow finishes and reports its completion time; the short-RTT flow of an RTT-unfair pair takes more', () => {
  const { res, rec } = run(
    parseScenario(
      base({
        duration: 20,
        flows: [
          { name: 'short', cc: 'cubic', rtt_ms: 20 },
          { name: 'long', cc: 'cubic', rtt_ms: 120 },
          { name: 'sized', cc: 'reno', start: 2, bytes: 500_000 },
        ],
      }),
    ),
  );
  const [s, l, z] = res.flows;
  assert.equal(z.received, 500_000);
  assert.ok(z.completion_s! > 0.4 && z.completion_s! < 18, `completion ${z.completion_s}`);
  assert.ok(s.goodput_mbit > l.goodput_mbit, `short ${s.goodput_mbit} long ${l.goodput_mbit}`);
  assert.ok(s.rtt_ms.p50! < l.rtt_ms.p50!);
  // The goodput plot: every byte read is in a bin; the sized flow's line starts at its start.
  assert.equal(rec.binMs, 100);
  assert.equal(rec.flows[2].rxBins.reduce((a, b) => a + b, 0), 500_000);
  const lines = goodputLines(rec);
  assert.equal(lines[2].points[0], 2);
  assert.equal(lines[0].points.length, 2 * 200);
  assert.equal(lines[2].label, 'sized (reno)');
});

test("Jain's index: 1 for equal shares, 1/n for one taking all", () => {
  assert.equal(jainIndex([3, 3, 3]), 1);
  assert.equal(jainIndex([5, 0, 0, 0]), 0.25);
  assert.ok(Math.abs(jainIndex([1, 2]) - 0.9) < 1e-12);
});

test('tapstack lab: prints the table, writes results.json and the plots, byte for byte the same on a second run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-'));
  try {
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify(base({ name: 'cli test', duration: 2 })));
    const outs: string[] = [];
    for (const out of ['o1', 'o2']) {
      const r = spawnSync(process.execPath, [CLI, 'lab', file, '--out', join(dir, out)], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      outs.push(r.stdout);
      assert.match(r.stderr, /simulated 2 s/);
    }
    assert.equal(outs[0], outs[1]);
    assert.match(outs[0], /^scenario cli test, seed 3, 2 s simulated\n/);
    assert.match(outs[0], /\nflow +cc +start s +rtt ms +goodput Mbit\/s +share +retrans/);
    assert.match(outs[0], /\na +cubic +0\.0 +40 +\d+\.\d{3} +\d+\.\d%/);
    assert.match(outs[0], /Jain's fairness index over the 2 flows' goodput: [01]\.\d{4}\n$/);
    const files = readdirSync(join(dir, 'o1')).sort();
    assert.deepEqual(files, ['flow0-a.html', 'flow0-a.svg', 'flow1-b.html', 'flow1-b.svg', 'goodput.svg', 'queue.svg', 'results.json']);
    for (const f of files) assert.ok(readFileSync(join(dir, 'o1', f)).equals(readFileSync(join(dir, 'o2', f))), `${f} differs between runs`);
    const svg = readFileSync(join(dir, 'o1', 'flow0-a.svg'), 'utf8');
    assert.match(svg, /class="series s-segs" data-n="[1-9]\d*"/);
    assert.match(svg, /class="series s-cwnd" data-n="[1-9]\d*"/);
    assert.match(readFileSync(join(dir, 'o1', 'queue.svg'), 'utf8'), /class="series" data-n="[1-9]\d*"/);
    assert.equal([...readFileSync(join(dir, 'o1', 'goodput.svg'), 'utf8').matchAll(/class="series" data-n="[1-9]\d*"/g)].length, 2, 'a line per flow');
    const json = JSON.parse(readFileSync(join(dir, 'o1', 'results.json'), 'utf8'));
    assert.equal(json.flows.length, 2);
    // --json and --seed: machine-readable, another seed.
    const j = spawnSync(process.execPath, [CLI, 'lab', file, '--seed', '8', '--json', '--no-plots'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(j.status, 0, j.stderr);
    assert.equal(JSON.parse(j.stdout).seed, 8);
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('lab-')), '--no-plots writes nothing');
    // Errors: one line naming the key, status 1; a bad --seed, status 2.
    writeFileSync(file, JSON.stringify(base({ flows: [{ cc: 'cubic', start: 'soon' }] })));
    const bad = spawnSync(process.execPath, [CLI, 'lab', file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, `tapstack: lab: ${file}: flows[0].start: must be a number of seconds ≥ 0\n`);
    const seed = spawnSync(process.execPath, [CLI, 'lab', file, '--seed', 'x'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(seed.status, 2);
    assert.match(seed.stderr, /--seed x: a whole number/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tapstack lab examples/cubic-vs-bbr.json: five simulated minutes, the same table and files on every run, in well under 10 s of CPU', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-'));
  try {
    const outs: string[] = [];
    for (const out of ['o1', 'o2']) {
      const r = spawnSync(process.execPath, [CLI, 'lab', join(ROOT, 'examples', 'cubic-vs-bbr.json'), '--out', join(dir, out)], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      outs.push(r.stdout);
      // CPU, not wall time: the machine is shared; the bound is 10 s of wall time on an idle one.
      const cpu = /simulated 300 s \(\d+ events\) in [\d.]+ s \(CPU ([\d.]+) s\)/.exec(r.stderr);
      assert.ok(cpu, r.stderr);
      assert.ok(Number(cpu[1]) < 10, `CPU ${cpu[1]} s for the example`);
    }
    assert.equal(outs[0], outs[1]);
    // Both algorithms ran and moved data; BBR (from 2 s) against CUBIC in a one-BDP drop-tail buffer.
    assert.match(outs[0], /\ncubic +cubic +0\.0 +40 +\d+\.\d{3} /);
    assert.match(outs[0], /\nbbr +bbr +2\.0 +40 +\d+\.\d{3} /);
    const res = JSON.parse(readFileSync(join(dir, 'o1', 'results.json'), 'utf8'));
    assert.ok(res.flows.every((f: { goodput_mbit: number }) => f.goodput_mbit > 0.5), JSON.stringify(res.flows));
    for (const f of readdirSync(join(dir, 'o1'))) assert.ok(readFileSync(join(dir, 'o1', f)).equals(readFileSync(join(dir, 'o2', f))), `${f} differs between runs`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runLab: a missing file is one line', async () => {
  await assert.rejects(
    runLab({ file: '/nonexistent/s.json', out: null }, () => {}, () => {}),
    (e: Error) => e instanceof LabError && e.message === '/nonexistent/s.json: no such file',
  );
});

/** Writes a module file into dir as `tapstack cc load` wants it: not writable by group or others. */
function moduleFile(dir: string, name: string, text: string, mode = 0o644): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

test("lab: cc_modules loads the daemon's module format; every sender's stack can use the module; bad modules are refused by key", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-cc-'));
  try {
    // A window fixed at 10 segments: about 10 x 1448 bytes per 40 ms round trip, whatever the path could carry.
    moduleFile(dir, 'fixed.js', 'module.exports = { name: "fixed10", init(sk) { sk.cwnd = 10; }, ssthresh(sk) { return Math.max(sk.cwnd, 2); }, congAvoid() {}, undoCwnd(sk) { return sk.cwnd; } };\n');
    const file = join(dir, 's.json');
    const flows = [
      { name: 'f', cc: 'fixed10' },
      { name: 'g', cc: 'fixed10', start: 0.5 },
    ];
    writeFileSync(file, JSON.stringify(base({ duration: 5, cc_modules: ['fixed.js'], flows })));
    let table = '';
    const res = await runLab({ file, out: null }, (s) => (table += s), () => {});
    assert.match(table, /\nf +fixed10 /);
    assert.match(table, /\nmodule fixed10 \(fixed\.js\): \d+ calls, no fault\n/);
    for (const f of res.flows) {
      assert.equal(f.cc_end, 'fixed10');
      assert.equal(f.retransmissions, 0, f.name);
      assert.ok(f.goodput_mbit > 2.4 && f.goodput_mbit < 2.95, `${f.name}: goodput ${f.goodput_mbit} Mbit/s for 10 segments per 40 ms`);
    }
    const m = res.cc_modules[0];
    assert.deepEqual({ ...m, calls: 0 }, { file: 'fixed.js', name: 'fixed10', calls: 0, faults: 0, fallbacks: 0, stopped: false, last_fault: null });
    assert.ok(m.calls >= 2, 'init on both senders at least');

    // Refusals: one line naming the entry, with the loader's reason.
    const refused = async (mods: unknown, re: RegExp) => {
      writeFileSync(file, JSON.stringify(base({ cc_modules: mods })));
      await assert.rejects(runLab({ file, out: null }, () => {}, () => {}), (e: Error) => e instanceof LabError && re.test(e.message), String(mods));
    };
    moduleFile(dir, 'bad.js', 'module.exports = { name: "bad" };\n');
    await refused(['fixed.js', 'bad.js'], /: cc_modules\[1\]: .*bad\.js: bad does not implement required ops \(ssthresh and undoCwnd\)$/);
    // The lab's former format (an ES module's default export) is not a module.
    moduleFile(dir, 'esm.mjs', 'export default { name: "esm", ssthresh: (sk) => 2, congAvoid() {}, undoCwnd: (sk) => 2 };\n');
    await refused(['esm.mjs'], /: cc_modules\[0\]: .*esm\.mjs: SyntaxError: /);
    moduleFile(dir, 'open.js', 'module.exports = { name: "open", ssthresh: () => 2, congAvoid() {}, undoCwnd: () => 2 };\n', 0o666);
    await refused(['open.js'], /: cc_modules\[0\]: .*open\.js: writable by others \(mode 666\)/);
    moduleFile(dir, 'cubic.js', 'module.exports = { name: "cubic", ssthresh: () => 2, congAvoid() {}, undoCwnd: () => 2 };\n');
    await refused(['cubic.js'], /: cc_modules\[0\]: .*cubic\.js: cubic already registered$/);
    await refused(['fixed.js', 'fixed.js'], /: cc_modules\[1\]: .*fixed\.js: fixed10 already loaded from /);
    await refused(['missing.js'], /: cc_modules\[0\]: .*missing\.js: no such file$/);
    await refused('fixed.js', /: cc_modules: must be an array of module files$/);
    // A flow naming an algorithm no module registered: the list of what there is includes the modules'.
    writeFileSync(file, JSON.stringify(base({ cc_modules: ['fixed.js'], flows: [{ cc: 'fixed11' }] })));
    await assert.rejects(runLab({ file, out: null }, () => {}, () => {}), (e: Error) => /: flows\[0\]\.cc: "fixed11" is not an available congestion control \(available: .*\bfixed10\b/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lab: a module that throws moves its socket to Reno; the run completes and the table, results and notes say so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-cc-'));
  try {
    // Reno's increase, until its 200th call.
    moduleFile(
      dir,
      'boom.js',
      'let n = 0;\nmodule.exports = { name: "boom", ssthresh(sk) { return Math.max(sk.cwnd >> 1, 2); }, undoCwnd(sk) { return sk.cwnd; },\n' +
        '  congAvoid(sk, acked) { if (++n === 200) throw new Error("boom at 200"); if (sk.cwndLimited) sk.cwnd += sk.cwnd < sk.ssthresh ? acked : 0; } };\n',
    );
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify(base({ duration: 5, cc_modules: ['boom.js'], flows: [{ name: 'x', cc: 'boom' }, { name: 'y', cc: 'reno' }] })));
    let table = '';
    const notes: string[] = [];
    const res = await runLab({ file, out: null }, (s) => (table += s), (s) => notes.push(s));
    const [x, y] = res.flows;
    assert.equal(x.cc, 'boom');
    assert.equal(x.cc_end, 'reno');
    assert.equal(y.cc_end, 'reno');
    assert.ok(x.goodput_mbit > 2, `the flow carried on with Reno: ${x.goodput_mbit} Mbit/s`);
    assert.deepEqual(res.cc_modules, [{ file: 'boom.js', name: 'boom', calls: res.cc_modules[0].calls, faults: 1, fallbacks: 1, stopped: false, last_fault: 'congAvoid(): Error: boom at 200' }]);
    assert.match(table, /\nx +boom->reno /);
    assert.match(table, /\nmodule boom \(boom\.js\): \d+ calls, 1 fault \(last: congAvoid\(\): Error: boom at 200\), 1 socket moved to reno\n/);
    assert.ok(notes.some((n) => /^cc module boom: tcp: congestion module fault: the socket falls back to reno \(congAvoid\(\): Error: boom at 200\)$/.test(n)), notes.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lab: a run with examples/cc/aimd.js repeats byte for byte; the workers end with the run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-cc-'));
  try {
    moduleFile(dir, 'aimd.js', readFileSync(join(ROOT, 'examples', 'cc', 'aimd.js'), 'utf8'));
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify(base({ duration: 6, path: { rtt_ms: 40, loss: 0.002 }, cc_modules: ['aimd.js'], flows: [{ name: 'a', cc: 'aimd' }, { name: 'c', cc: 'cubic', start: 0.5 }] })));
    const tables: string[] = [];
    for (const out of ['o1', 'o2']) {
      let t = '';
      await runLab({ file, out: join(dir, out) }, (s) => (t += s), () => {});
      tables.push(t);
    }
    assert.equal(tables[1], tables[0]);
    assert.match(tables[0], /\na +aimd /);
    assert.match(tables[0], /\nmodule aimd \(aimd\.js\): \d+ calls, no fault\n/);
    for (const f of readdirSync(join(dir, 'o1'))) assert.ok(readFileSync(join(dir, 'o1', f)).equals(readFileSync(join(dir, 'o2', f))), `${f} differs between runs`);
    const json = JSON.parse(readFileSync(join(dir, 'o1', 'results.json'), 'utf8'));
    assert.ok(json.flows[0].retransmissions > 0 && json.cc_modules[0].calls > 100, 'the module saw losses and ACKs');

    // Built and run directly: every module's worker exits when run() returns.
    const lab = await Lab.create(parseScenarioText(readFileSync(file, 'utf8')), dir);
    const workers = lab.cc!.loaded.map(({ mod }) => once(mod.worker, 'exit'));
    lab.run();
    await Promise.all(workers);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
