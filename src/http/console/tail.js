// The live tail (a watch session over one topic, streamed with EventSource) and the write
// form. A tombstone is drawn as a gap row carrying its range in `data-gap-from`/`data-gap-to`.

import { describe, json, key, topicPath } from './api.js';

/** Rows kept in the tail; older ones are dropped so a busy topic cannot grow the page. */
const MAX_ROWS = 500;
/** Characters of a record's data shown in its row. */
const MAX_DATA_CHARS = 400;

let source = null;

const $ = (id) => document.getElementById(id);

function status(state, text) {
  const el = $('tail-status');
  el.dataset.state = state;
  el.textContent = text;
}

export function stopTail() {
  if (source) {
    source.close();
    source = null;
    status('idle', 'stopped');
  }
}

/** Tail `topic` from its head (`from === ''`) or from seq `from`. */
export async function startTail(topic, from) {
  stopTail();
  $('tail-log').tBodies[0].replaceChildren();
  const spec = from === '' ? { tail: true } : { from_seq: Number(from) };
  status('connecting', 'opening…');
  const created = await json('POST', '/v0/watch', { topics: { [topic]: spec }, include_tags: true });
  if (!created.ok) {
    status('error', describe(created));
    return;
  }
  // EventSource cannot send headers: the stream takes the key as `?token=`.
  const token = key() ? '?token=' + encodeURIComponent(key()) : '';
  const es = new EventSource(created.body.stream_url + token);
  source = es;
  const on = (kind, handle) => es.addEventListener(kind, (e) => source === es && handle(e));
  on('open', () => status('live', `streaming ${topic}`));
  on('record', (e) => {
    const frame = JSON.parse(e.data, keepNumbers);
    for (const rec of frame.records) addRecord(frame.topic, rec);
  });
  on('tombstone', (e) => addGap(JSON.parse(e.data)));
  on('caught-up', (e) => status('caught-up', `caught up at seq ${JSON.parse(e.data).head_seq}`));
  on('topic-deleted', () => {
    status('ended', 'topic deleted');
    es.close();
  });
  on('error', (e) => {
    if (e.data) status('reconnecting', JSON.parse(e.data).message);
    else if (es.readyState === EventSource.CLOSED) status('error', 'stream closed; press tail to start again');
    else status('reconnecting', 'reconnecting…');
  });
}

/**
 * A `JSON.parse` reviver that keeps a number a double would change as the digits the server
 * sent, so a record shows what is stored (`12345678901234567890`, `1.50`). Numbers that
 * survive the round trip (every `$seq` and `$ts`) stay numbers. Browsers without
 * `JSON.rawJSON` and reviver source text just get doubles.
 */
function keepNumbers(_key, value, context) {
  const source = context && context.source;
  if (typeof value === 'number' && source !== undefined && String(value) !== source && JSON.rawJSON) {
    return JSON.rawJSON(source);
  }
  return value;
}

function append(row) {
  const box = $('tail-box');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  const body = $('tail-log').tBodies[0];
  body.append(row);
  while (body.rows.length > MAX_ROWS) body.rows[0].remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function addRecord(topic, rec) {
  const tr = document.createElement('tr');
  tr.className = 'rec';
  tr.dataset.topic = topic;
  tr.dataset.seq = rec.$seq;
  const time = new Date(rec.$ts).toISOString().slice(11, 23);
  let data = JSON.stringify(rec.data);
  if (data === undefined) data = '';
  if (data.length > MAX_DATA_CHARS) data = data.slice(0, MAX_DATA_CHARS) + '…';
  tr.append(cell(rec.$seq, 'num'), cell(time, 'muted'), cell(rec.$tag || '', 'tag'), cell(data, 'data'));
  append(tr);
}

function addGap(t) {
  const tr = document.createElement('tr');
  tr.className = 'gap';
  tr.dataset.gapFrom = t.gap_from;
  tr.dataset.gapTo = t.gap_to;
  tr.dataset.reason = t.reason;
  const range = t.gap_from === t.gap_to ? `seq ${t.gap_from}` : `seqs ${t.gap_from}–${t.gap_to}`;
  const td = cell(`${range} lost: ${t.reason}`);
  td.colSpan = 4;
  tr.append(td);
  append(tr);
}

/** The write form: one record of the JSON typed in, sent as typed (big numbers keep their digits). */
export function initWrite(onWritten) {
  $('write-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = $('write-result');
    const topic = $('write-topic').value.trim();
    const text = $('write-data').value.trim();
    const tag = $('write-tag').value;
    try {
      JSON.parse(text);
    } catch (err) {
      out.dataset.state = 'error';
      out.textContent = `not JSON: ${err.message}`;
      return;
    }
    // `text` parsed as one JSON value, so splicing it in keeps the body one valid object.
    const tagPart = tag ? `,"tag":${JSON.stringify(tag)}` : '';
    const body = `{"records":[{"data":${text}${tagPart}}]}`;
    out.dataset.state = 'sending';
    out.textContent = 'writing…';
    const r = await json('POST', topicPath(topic), body).catch((err) => ({ status: 0, body: null, err }));
    out.dataset.state = r.ok ? 'ok' : 'error';
    out.textContent = r.body ? `${r.status} ${JSON.stringify(r.body, null, 1)}` : describe(r.err || r);
    if (r.ok) onWritten();
  });
}
