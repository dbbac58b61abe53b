/**
 * Operations endpoints: health and Prometheus metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { BASE, assertScim, createUser, header } from './lib.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseSamples(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

describe('operations', () => {
  test('GET /health → 200', async () => {
    const res = await t.request('GET', '/health', { token: false });
    assert.equal(res.status, 200);
  });

  test('GET /metrics: Prometheus text with a request counter and a latency histogram by route and status', async () => {
    const u = await createUser(t, { userName: 'metrics-user' });
    assertScim(await t.request('GET', `${BASE}/Users/${u.id}`), 200);
    assert.equal((await t.request('GET', `${BASE}/Users/nope-nope`)).status, 404);
    const res = await t.request('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(header(res, 'content-type') ?? '', /^text\/plain/);
    const { samples, types } = parseSamples(res.text);
    const counters = [...types].filter(([, ty]) => ty === 'counter').map(([n]) => n);
    const histograms = [...types].filter(([, ty]) => ty === 'histogram').map(([n]) => n);
    const labelled = (s: Sample): boolean => s.labels.route !== undefined && s.labels.status !== undefined;
    const counter = samples.filter(
      (s) => counters.some((c) => s.name === c || s.name === `${c}_total`) && labelled(s),
    );
    assert.ok(counter.length > 0, 'a request counter labelled by route and status');
    const buckets = samples.filter((s) => histograms.some((h) => s.name === `${h}_bucket`) && labelled(s));
    assert.ok(buckets.length > 0, 'a latency histogram labelled by route and status');
    assert.ok(buckets.every((b) => b.labels.le !== undefined));
    const statuses = new Set(counter.map((s) => s.labels.status));
    for (const st of ['201', '200', '404'])
      assert.ok(statuses.has(st), `status ${st} counted: ${[...statuses].join(',')}`);
    // Routes are patterns, not raw URLs: ids must not become label values (unbounded cardinality).
    for (const s of [...counter, ...buckets]) {
      assert.ok(!s.labels.route!.includes(u.id), `route label carries an id: ${s.labels.route}`);
      assert.ok(!s.labels.route!.includes('nope-nope'), `route label carries a raw path: ${s.labels.route}`);
    }
  });
});
