// The console's API client. Every call goes through the public HTTP API with the key the user
// entered; a 401 opens the key dialog once (every call that meets it waits on the same
// prompt) and the call is retried with the new key. The key lives in sessionStorage: it
// survives reloads of this tab and is gone when the tab closes.

const KEY = 'topics.key';
/** Retries after a 401 per call: a refused key asks again, but never in an endless loop. */
const AUTH_RETRIES = 5;

let pendingPrompt = null;

export function key() {
  return sessionStorage.getItem(KEY) || '';
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

/** `fetch` with the key; answers the Response of the first non-401 attempt. */
export async function call(method, path, { body, accept } = {}) {
  for (let attempt = 0; attempt <= AUTH_RETRIES; attempt++) {
    const used = key();
    const headers = {};
    if (used) headers.Authorization = 'Bearer ' + used;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (accept) headers.Accept = accept;
    const resp = await fetch(path, { method, headers, body, cache: 'no-store' });
    if (resp.status !== 401) return resp;
    await askKey(used);
  }
  throw new Error('no accepted API key');
}

/** A JSON call: `{status, ok, body}`, with `body` parsed (or `null` if it is not JSON). */
export async function json(method, path, body) {
  const text = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
  const resp = await call(method, path, { body: text, accept: 'application/json' });
  let parsed = null;
  try {
    parsed = await resp.json();
  } catch (_) {
    parsed = null;
  }
  return { status: resp.status, ok: resp.ok, body: parsed };
}

/** A one-line description of an error answer (`{error:{code,message}}`) or a failed call. */
export function describe(result) {
  const err = result && result.body && result.body.error;
  if (err) return `${result.status} ${err.code}: ${err.message}`;
  return result && result.status ? `HTTP ${result.status}` : String(result);
}

/** `/v0/topics/<name>` with the name escaped as one path segment. */
export function topicPath(name, rest = '') {
  return '/v0/topics/' + encodeURIComponent(name) + rest;
}

/** Resolves once a key was entered; a 401 for a key that was replaced meanwhile just retries. */
function askKey(used) {
  if (key() !== used) return Promise.resolve();
  if (pendingPrompt) return pendingPrompt;
  pendingPrompt = new Promise((resolve) => {
    const dialog = document.getElementById('key-dialog');
    const input = document.getElementById('key-input');
    document.getElementById('key-error').textContent = used ? 'That key was refused; enter another.' : '';
    input.value = '';
    // Without a key the console can show nothing: the dialog stays until one is entered.
    dialog.oncancel = (e) => e.preventDefault();
    document.getElementById('key-form').onsubmit = (e) => {
      e.preventDefault();
      const entered = input.value.trim();
      if (!entered) return;
      sessionStorage.setItem(KEY, entered);
      dialog.close();
      pendingPrompt = null;
      document.dispatchEvent(new Event('topics-key'));
      resolve();
    };
    dialog.showModal();
    input.focus();
  });
  return pendingPrompt;
}
