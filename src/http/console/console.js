// The console's entry: readiness, live charts, and the topic, queue and router panels, each
// refreshed by its own loop (one request in flight per loop, never overlapping). Everything
// the server sends is put into the page as text, never as markup.

import { call, describe, forgetKey, json, key, topicPath } from './api.js';
import { bytes, compact, duration, Sparkline } from './charts.js';
import { initWrite, startTail, stopTail } from './tail.js';

const READY_MS = 2000;
const METRICS_MS = 1500;
const TOPICS_MS = 3000;
/** Topic configs change rarely: a cached state is fetched again after this long. */
const STATE_TTL_MS = 30000;
/** Topics shown (one list page); the prefix filter narrows a larger server. */
const PAGE = 200;
/** Per-topic state requests in flight at once. */
const STATE_CONCURRENCY = 6;

const $ = (id) => document.getElementById(id);

/** topic → {state, at}: the last `GET /v0/topics/:topic` (config, queue counters). */
const states = new Map();

/**
 * Run `task` now and then every `ms` after it finished; a failure shows in `onError`. A tab
 * in the background skips its turns: nobody looks, so the server need not answer.
 */
function every(ms, task, onError) {
  const run = async () => {
    try {
      if (!document.hidden) await task();
    } catch (err) {
      onError(err);
    }
    setTimeout(run, ms);
  };
  run();
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

// ---- readiness ----

async function refreshReady() {
  const badge = $('ready');
  const r = await json('GET', '/v0/ready');
  if (r.ok) {
    const d = r.body.detail || {};
    const warn = [];
    if (d.corrupt_records) warn.push(`${d.corrupt_records} corrupt records`);
    if (d.disk_full) warn.push('disk full');
    badge.dataset.state = warn.length ? 'warn' : 'ready';
    badge.textContent = ['ready', ...warn].join(' · ');
    return;
  }
  const detail = (r.body && r.body.error && r.body.error.detail) || {};
  badge.dataset.state = 'not-ready';
  badge.textContent = detail.storage_error
    ? `storage failed: ${detail.storage_error}`
    : `replaying ${Math.floor((detail.replay_progress || 0) * 100)}%`;
}

function unreachable() {
  $('ready').dataset.state = 'down';
  $('ready').textContent = 'unreachable';
}

// ---- live charts ----

const rate = new Sparkline($('chart-rate'), '#2b6cb0');
const fsync = new Sparkline($('chart-fsync'), '#c05621');
let previous = null;

async function refreshMetrics() {
  const r = await json('GET', '/v0/metrics');
  if (!r.ok) throw new Error(describe(r));
  const m = r.body;
  // Rates between two scrapes, timed by the server's own uptime (a restart starts over).
  if (previous && m.uptime_ms > previous.uptime_ms) {
    const secs = (m.uptime_ms - previous.uptime_ms) / 1000;
    const written = (m.records_written_total - previous.records_written_total) / secs;
    const syncs = m.wal.fsync_count - previous.wal.fsync_count;
    const mean = syncs > 0 ? (m.wal.fsync_micros_total - previous.wal.fsync_micros_total) / syncs : null;
    rate.push(written);
    fsync.push(mean);
    $('rate-now').textContent = compact(written);
    $('fsync-now').textContent = mean === null ? 'idle' : compact(mean);
  } else if (previous) {
    rate.reset();
    fsync.reset();
  }
  previous = m;
  const totals = [
    ['topics', compact(m.topics)], ['records', compact(m.records_live)], ['bytes', bytes(m.bytes_live)],
    ['routers', compact(m.routers)], ['watch sessions', compact(m.watch_sessions)],
    ['streams', compact(m.sse_connections)], ['WAL queue', compact(m.wal.queue_depth)],
  ];
  $('totals').replaceChildren(...totals.flatMap(([k, v]) => [text('dt', k), text('dd', v)]));
}

// ---- topics and queues ----

function retention(c) {
  const parts = [];
  if (c.ttl_ms) parts.push(`ttl ${duration(c.ttl_ms)}`);
  if (c.cap_records) parts.push(`cap ${c.cap_records} rec`);
  if (c.cap_bytes) parts.push(`cap ${bytes(c.cap_bytes)}`);
  if (parts.length && c.discard === 'reject') parts.push('reject when full');
  return parts.length ? parts.join(', ') : 'keep all';
}

/** States for `names`: new topics, queues (their counters move) and stale entries. */
async function fetchStates(names) {
  const now = Date.now();
  const due = names.filter((n) => {
    const s = states.get(n);
    return !s || s.state.type === 'queue' || now - s.at > STATE_TTL_MS;
  });
  const worker = async () => {
    for (let n = due.shift(); n !== undefined; n = due.shift()) {
      const r = await json('GET', topicPath(n, '?touch=false'));
      if (r.ok) states.set(n, { state: r.body, at: Date.now() });
      else states.delete(n);
    }
  };
  await Promise.all(Array.from({ length: STATE_CONCURRENCY }, worker));
}

function topicRow(t) {
  const s = states.get(t.topic);
  const c = s ? s.state.config : null;
  const tr = document.createElement('tr');
  tr.dataset.topic = t.topic;
  const cells = [
    ['topic', t.topic], ['type', c ? c.type : '…'], ['class', c ? c.durability : '…'],
    ['head', t.head_seq, 'num'], ['earliest', t.earliest_seq, 'num'], ['count', t.count, 'num'],
    ['bytes', bytes(t.bytes), 'num'], ['retention', c ? retention(c) : '…'],
  ];
  for (const [col, value, cls] of cells) {
    const td = text('td', String(value), cls);
    td.dataset.col = col;
    tr.append(td);
  }
  const button = text('button', 'tail');
  button.type = 'button';
  button.className = 'small';
  button.addEventListener('click', () => {
    $('tail-topic').value = t.topic;
    $('tail-from').value = '';
    startTail(t.topic, '');
  });
  const td = document.createElement('td');
  td.append(button);
  tr.append(td);
  return tr;
}

function queueRow(name, state) {
  const q = state.queue || {};
  const tr = document.createElement('tr');
  tr.dataset.topic = name;
  const cells = [
    ['topic', name], ['ready', q.ready, 'num'], ['in_flight', q.in_flight, 'num'],
    ['dead_lettered', q.dead_lettered, 'num'], ['dead_letter', state.config.dead_letter || '—'],
  ];
  for (const [col, value, cls] of cells) {
    const td = text('td', String(value ?? '–'), cls);
    td.dataset.col = col;
    tr.append(td);
  }
  return tr;
}

async function refreshTopics() {
  const prefix = $('topic-prefix').value;
  const query = `?page_size=${PAGE}` + (prefix ? '&prefix=' + encodeURIComponent(prefix) : '');
  const r = await json('GET', '/v0/topics' + query);
  if (!r.ok) throw new Error(describe(r));
  const topics = r.body.topics;
  const names = topics.map((t) => t.topic);
  for (const n of states.keys()) if (!names.includes(n)) states.delete(n);
  await fetchStates(names);
  $('topics').tBodies[0].replaceChildren(...topics.map(topicRow));
  const queues = names.filter((n) => states.get(n) && states.get(n).state.type === 'queue');
  $('queues').tBodies[0].replaceChildren(...queues.map((n) => queueRow(n, states.get(n).state)));
  $('topic-names').replaceChildren(...names.map((n) => Object.assign(document.createElement('option'), { value: n })));
  $('topics-note').textContent = r.body.next_cursor ? `first ${PAGE} topics shown; filter by prefix for others` : '';
}

// ---- routers ----

/** `topics_router_lag{router="…"} N` samples of the Prometheus text (the JSON form has no per-router series). */
function routerLags(exposition) {
  const lags = new Map();
  const line = /^topics_router_lag\{router="((?:[^"\\]|\\.)*)"\} (\d+)$/;
  for (const l of exposition.split('\n')) {
    const m = line.exec(l);
    if (m) lags.set(m[1].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)), Number(m[2]));
  }
  return lags;
}

async function refreshRouters() {
  const r = await json('GET', `/v0/routers?page_size=${PAGE}`);
  if (!r.ok) throw new Error(describe(r));
  const routers = r.body.routers;
  let lags = new Map();
  if (routers.length) {
    const resp = await call('GET', '/v0/metrics', { accept: 'text/plain' });
    if (resp.ok) lags = routerLags(await resp.text());
  }
  $('routers-note').textContent = routers.length ? '' : 'no routers';
  $('routers').tBodies[0].replaceChildren(...routers.map((x) => {
    const tr = document.createElement('tr');
    tr.dataset.router = x.router;
    const cells = [['router', x.router], ['route', `${x.source} → ${x.dest}`],
      ['forwarded', x.forwarded_total, 'num'], ['lag', lags.has(x.router) ? lags.get(x.router) : '–', 'num']];
    for (const [col, value, cls] of cells) {
      const td = text('td', String(value), cls);
      td.dataset.col = col;
      tr.append(td);
    }
    return tr;
  }));
}

// ---- wiring ----

function showKeyState() {
  $('key-state').textContent = key() ? 'key set for this tab' : '';
  $('key-forget').hidden = !key();
}

async function showVersion() {
  const r = await json('GET', '/v0/health');
  if (r.ok) $('version').textContent = `v${r.body.version}`;
}

function panelError(id) {
  return (err) => {
    $(id).textContent = String(err.message || err);
  };
}

document.addEventListener('topics-key', showKeyState);
$('key-forget').addEventListener('click', () => {
  forgetKey();
  stopTail();
  location.reload();
});
$('tail-form').addEventListener('submit', (e) => {
  e.preventDefault();
  startTail($('tail-topic').value.trim(), $('tail-from').value.trim());
});
$('tail-stop').addEventListener('click', stopTail);
initWrite(() => refreshTopics().catch(panelError('topics-note')));
showKeyState();
showVersion().catch(() => {});
every(READY_MS, refreshReady, unreachable);
every(METRICS_MS, refreshMetrics, (err) => {
  $('fsync-now').textContent = '–';
  $('rate-now').textContent = String(err.message || err);
});
every(TOPICS_MS, refreshTopics, panelError('topics-note'));
every(TOPICS_MS, refreshRouters, panelError('routers-note'));
