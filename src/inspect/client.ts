/**
 * The inspector page's script, served as /inspect/inspector.js (the CSP allows no inline script). Plain
 * browser JavaScript kept as a string: it needs no bundler, and tsc carries it into dist.
 *
 * Escaping rule: every value from a notification reaches the DOM as a text node (createTextNode /
 * textContent) or as a class name from a fixed table; no HTML string is ever parsed. String.raw keeps the
 * script's own backslashes as written.
 */
export const INSPECTOR_SCRIPT = String.raw`'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const list = $('list');
  const statusLine = $('status');
  const empty = $('empty');
  const form = $('filter');
  const input = $('server-id');
  const OUTCOME_CLASS = { OK: 'ok', REMOVE: 'remove', FAIL: 'fail' };

  let capacity = 200;
  let source = null;
  let state = 'connecting';
  let retryTimer = 0;
  let retryDelay = 2000;
  let typingTimer = 0;
  // Set by the server's snapshot: a test service shows nothing until a server id is given, and says how.
  let hint = '';
  const shown = new Set();

  // The only way this script creates content: strings become text nodes, never markup.
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined || child === '') continue;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function serverFilter() {
    return new URLSearchParams(location.search).get('server_id') || '';
  }

  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const pad = (v) => String(v).padStart(2, '0');
    const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString() + ' ' + time;
  }

  function pretty(value) {
    return el('pre', 'json', JSON.stringify(value, null, 2));
  }

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  // The text a phone would show, so a row can be recognised without opening it.
  function previewOf(sent) {
    if (!isObject(sent)) return '';
    if (isObject(sent.payload) && isObject(sent.payload.aps)) {
      const alert = sent.payload.aps.alert;
      if (typeof alert === 'string') return alert;
      if (isObject(alert)) return [alert.title, alert.subtitle, alert.body].filter((s) => typeof s === 'string' && s !== '').join(' — ');
      return '';
    }
    if (isObject(sent.data)) return [sent.data.channel_name, sent.data.message].filter((s) => typeof s === 'string' && s !== '').join(' — ');
    return '';
  }

  function fact(dl, name, value) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(el('dt', '', name));
    dl.appendChild(el('dd', '', value));
  }

  function attempts(n) {
    const count = Array.isArray(n.attempts) ? n.attempts.length : 0;
    return count + (count === 1 ? ' attempt' : ' attempts');
  }

  // Each attempt with the provider's answer: when it started, its verdict, HTTP status, reason, the provider's id.
  function attemptList(n) {
    if (!Array.isArray(n.attempts) || n.attempts.length === 0) return null;
    const items = n.attempts.map((a, i) => el('li', 'attempt',
      el('span', 'verdict', String(a.verdict)),
      ' attempt ' + (i + 1) + ' at +' + a.start_ms + ' ms, took ' + a.ms + ' ms',
      a.status !== undefined ? ', HTTP ' + a.status : '',
      a.reason ? ', ' + a.reason : '',
      a.provider_id ? el('span', 'mono', ' · id ' + a.provider_id) : null));
    return el('div', 'attempts', el('h3', '', 'Attempts'), el('ol', 'attempt-list', ...items));
  }

  function receiptOf(n) {
    if (n.receipt) {
      const r = n.receipt;
      return 'acknowledged at ' + r.at + ' (device time ' + clock(r.received_at) + (r.id_loaded ? ', id loaded' : '') + ')';
    }
    return n.ack_id ? 'no receipt yet' : '';
  }

  function requestOf(sent) {
    if (isObject(sent) && isObject(sent.headers) && 'payload' in sent) {
      // Shown as it goes on the wire: request line and headers, then the JSON body.
      const head = ['POST /3/device/' + sent.token].concat(Object.keys(sent.headers).map((name) => name + ': ' + sent.headers[name]));
      return el('div', 'request',
        el('h3', '', 'Sent to APNs'), el('pre', 'http', head.join('\n')),
        el('h3', '', 'Payload (the request body)'), pretty(sent.payload));
    }
    if (sent !== undefined && sent !== null) return el('div', 'request', el('h3', '', 'Sent to FCM (the message)'), pretty(sent));
    return el('p', 'note', 'Nothing was sent: the proxy refused the request before building it.');
  }

  function row(n) {
    const status = n.answer ? n.answer.status : '';
    const outcome = OUTCOME_CLASS[status] || 'fail';
    const hint = status === 'REMOVE' ? 'the device token is no longer valid; the chat server forgets it' : '';
    const why = [n.reason, n.answer && n.answer.error, hint].filter((s, i, all) => typeof s === 'string' && s !== '' && all.indexOf(s) === i).join(': ');
    const head = el('span', 'head',
      el('span', 'badge ' + outcome, String(status)),
      el('time', 'time', clock(n.at)),
      el('span', 'server', n.server_id),
      el('span', 'chip', n.platform),
      el('span', 'chip', n.type),
      n.receipt ? el('span', 'chip receipt', 'receipt') : null,
      n.transport === 'voip' ? el('span', 'chip voip', 'voip') : null,
      el('span', 'timing', n.ms + ' ms · ' + attempts(n)));
    head.querySelector('time').setAttribute('datetime', String(n.at));
    const summary = el('summary', '', head,
      why ? el('div', 'line why', why) : null,
      previewOf(n.sent) ? el('div', 'line preview', previewOf(n.sent)) : null);

    const facts = el('dl', 'facts');
    fact(facts, 'Received', n.at);
    fact(facts, 'Server id', n.server_id);
    fact(facts, 'Platform', n.platform);
    fact(facts, 'Push type', n.type + (n.transport ? ' (' + n.transport + ')' : ''));
    fact(facts, 'Device', n.device);
    fact(facts, 'Ack id', n.ack_id);
    fact(facts, 'Post id', n.post_id);
    fact(facts, 'Outcome', status + (n.reason ? ' (' + n.reason + ')' : ''));
    fact(facts, 'Error', n.answer && n.answer.error);
    fact(facts, 'Round trip', n.ms + ' ms, ' + attempts(n));
    fact(facts, 'Receipt', receiptOf(n));

    const received = el('div', 'received', el('h3', '', 'Received from the chat server'), pretty(n.received || {}));
    const item = el('li', 'row ' + outcome, el('details', '', summary, el('div', 'detail', facts, attemptList(n), requestOf(n.sent), received)));
    item.dataset.id = String(n.id);
    item.dataset.server = String(n.server_id);
    return item;
  }

  function showAll(notifications) {
    // A reconnect brings a fresh snapshot: rows the reader had opened stay open.
    const open = new Set(Array.from(list.querySelectorAll('li > details[open]'), (d) => d.parentElement.dataset.id));
    shown.clear();
    const rows = [];
    for (const n of notifications) {
      if (shown.has(n.id)) continue;
      shown.add(n.id);
      const item = row(n);
      if (open.has(String(n.id))) item.firstChild.open = true;
      rows.push(item);
    }
    list.replaceChildren(...rows);
  }

  function showNew(n) {
    if (shown.has(n.id)) {
      // The same record again: its receipt arrived. Replace its row where it stands, open if it was.
      const old = list.querySelector('li[data-id="' + Number(n.id) + '"]');
      if (!old) return;
      const item = row(n);
      if (old.firstChild.open) item.firstChild.open = true;
      list.replaceChild(item, old);
      return;
    }
    shown.add(n.id);
    const item = row(n);
    item.classList.add('fresh');
    list.insertBefore(item, list.firstChild);
    while (list.children.length > capacity) {
      shown.delete(Number(list.lastElementChild.dataset.id));
      list.lastElementChild.remove();
    }
    updateStatus();
  }

  function updateStatus() {
    const filter = serverFilter();
    const count = list.children.length;
    const words = {
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: 'Connection lost, reconnecting…',
      retrying: 'Not available right now, retrying…',
    };
    let text = words[state] + ' · ' + count + (count === 1 ? ' notification' : ' notifications') + ' shown';
    if (filter) text += ' from server id “' + filter + '”';
    else if (hint) text += ': enter a server id';
    statusLine.textContent = text;
    statusLine.className = 'status ' + state;
    empty.hidden = count > 0 || state !== 'live';
    empty.textContent = hint
      ? hint
      : filter
        ? 'Nothing from server id “' + filter + '” among the last ' + capacity + ' notifications.'
        : 'No notifications yet. Send one with the command above.';
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    const filter = serverFilter();
    const es = new EventSource('inspect/events' + (filter ? '?' + new URLSearchParams({ server_id: filter }) : ''));
    source = es;
    state = 'connecting';
    updateStatus();
    es.addEventListener('snapshot', (event) => {
      if (source !== es) return;
      const data = JSON.parse(event.data);
      if (data.capacity > 0) capacity = data.capacity;
      $('capacity').textContent = String(capacity);
      hint = typeof data.hint === 'string' ? data.hint : '';
      input.placeholder = data.serverIdRequired ? 'your server id' : 'all servers';
      showAll(data.notifications);
      state = 'live';
      retryDelay = 2000;
      updateStatus();
    });
    es.addEventListener('notification', (event) => {
      if (source === es) showNew(JSON.parse(event.data));
    });
    es.addEventListener('error', () => {
      if (source !== es) return;
      // EventSource retries a dropped stream itself, but gives up on a refusal (server busy): retry later.
      if (es.readyState === EventSource.CLOSED) {
        state = 'retrying';
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 60000);
      } else {
        state = 'reconnecting';
      }
      updateStatus();
    });
  }

  function applyFilter(value) {
    clearTimeout(typingTimer);
    if (value === serverFilter()) return;
    const params = new URLSearchParams(location.search);
    if (value) params.set('server_id', value);
    else params.delete('server_id');
    const query = params.toString();
    // The URL carries the filter so it can be shared, without reloading the page.
    history.replaceState(null, '', location.pathname + (query ? '?' + query : ''));
    showAll([]);
    connect();
  }

  function showMode(mode) {
    if (typeof mode !== 'string' || mode === '') return;
    const box = $('mode');
    box.replaceChildren();
    if (mode === 'test') {
      box.append(el('b', '', 'Test service'), ' (mode: test). It shows the notifications of the server id you enter, to anyone who enters it: send test messages only.');
    } else {
      box.append(el('b', '', 'Mode: ' + mode + '.'), ' Anyone who can open this page can read these notifications.');
    }
    box.hidden = false;
  }

  const sendUrl = new URL('api/v1/send_push', location.href).href;
  $('curl').textContent = 'curl -s ' + sendUrl + " -d '" + JSON.stringify({
    platform: 'apple_rn-v2', server_id: 'demo', device_id: 'ab'.repeat(32), type: 'message', version: 'v2',
    channel_name: 'Town Square', message: 'hello :wave:',
  }) + "'";

  input.value = serverFilter();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    applyFilter(input.value.trim());
  });
  input.addEventListener('input', () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => applyFilter(input.value.trim()), 500);
  });

  fetch('version', { headers: { Accept: 'application/json' } })
    .then((response) => (response.ok ? response.json() : {}))
    .then((info) => showMode(info.mode), () => {});
  connect();
})();
`;
