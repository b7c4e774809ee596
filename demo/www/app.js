// The live page of ngx_stockprice (demo/www): plain JavaScript, no
// framework, nothing fetched from anywhere but this page's own host, no
// inline script or style (a strict Content-Security-Policy passes).
//
// Where the data comes from (README "The prices API", "Live prices"):
//
// - GET /api/StockPrice with Accept: text/event-stream (EventSource): the
//   first event ("prices") is the current list, the newest record of every
//   symbol; each later one the newest records of the symbols a refresh
//   updated.  An event's id is the ETag of the data it reflects; when the
//   server closes the stream (nginx reload, quit) the browser reconnects
//   by itself with Last-Event-ID, and the server sends the current list if
//   anything changed meanwhile, nothing otherwise.
// - GET /api/StockPrice/SYMBOL: the symbol's kept records (history=N),
//   newest first.  The sparklines start from it and grow with every new
//   record the stream or the polling brings (up to MAX_POINTS), and it is
//   read again after a reconnect, when records may have been missed.
// - Without EventSource, or when the stream fails STREAM_ERRORS times in a
//   row, the list is polled every POLL_MS with If-None-Match (304: nothing
//   new) and the stream tried again every STREAM_RETRY_MS.
// - GET /api/StockPrice.status every STATUS_MS: the feed's health.

'use strict';

(function () {
  const LIST = '/api/StockPrice';
  const STATUS = '/api/StockPrice.status';

  const POLL_MS = 3000;
  const STATUS_MS = 3000;
  const STREAM_ERRORS = 3;
  const STREAM_RETRY_MS = 30000;
  const MAX_POINTS = 60;
  const HISTORY_AT_ONCE = 4;

  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const priceFmt = new Intl.NumberFormat(undefined, {
    minimumFractionDigits: 2, maximumFractionDigits: 6,
  });
  const pctFmt = new Intl.NumberFormat(undefined, {
    minimumFractionDigits: 2, maximumFractionDigits: 2,
  });
  const timeFmt = new Intl.DateTimeFormat(undefined, {
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });

  // symbol -> { symbol, points: [{ id, price, at, value }] oldest first,
  //             ids: Set, el: { card, price, change, ... } }
  const series = new Map();

  let newest = NaN;            // the latest refresh time known, unix ms
  let clockOffset = 0;         // server clock minus ours, from Date headers

  ///////////////////////////////////////////////////////////////////////////
  // records

  function valid(r) {
    return r !== null && typeof r === 'object'
      && typeof r.symbol === 'string' && r.symbol !== ''
      && typeof r.price === 'number' && Number.isFinite(r.price);
  }

  function recordTime(r) {
    const t = Date.parse(r.measurementTimeStamp);
    return Number.isNaN(t) ? Date.now() + clockOffset : t;
  }

  // a record into its symbol's points (kept in time order); false if it
  // was there already (the same id: the stream's first event and the
  // history both hold the newest record, and a reconnect repeats it)

  function addPoint(s, r) {
    const id = typeof r.id === 'string' ? r.id
      : `${r.measurementTimeStamp}|${r.price}`;

    if (s.ids.has(id)) {
      return false;
    }

    const p = { id, price: r.price, at: recordTime(r), value: r.valueDateTime };
    let i = s.points.length;

    while (i > 0 && s.points[i - 1].at > p.at) {
      i--;
    }

    s.points.splice(i, 0, p);
    s.ids.add(id);

    while (s.points.length > MAX_POINTS) {
      s.ids.delete(s.points.shift().id);
    }

    return true;
  }

  // records of the list or of an event; "full": they are the whole list,
  // so a symbol missing from them is no longer served

  function apply(records, full) {
    if (!Array.isArray(records)) {
      return;
    }

    const seen = new Set();
    const changed = new Set();
    const fresh = [];

    for (const r of records) {
      if (!valid(r)) {
        continue;
      }

      seen.add(r.symbol);

      let s = series.get(r.symbol);

      if (!s) {
        s = createSeries(r.symbol);
        fresh.push(r.symbol);
      }

      if (addPoint(s, r)) {
        changed.add(s);
      }

      noteRefresh(recordTime(r));
    }

    if (full) {
      for (const symbol of [...series.keys()]) {
        if (!seen.has(symbol)) {
          removeSeries(symbol);
        }
      }
    }

    for (const s of changed) {
      render(s, true);
    }

    loadHistory(fresh);

    $('empty').hidden = series.size > 0;
  }

  ///////////////////////////////////////////////////////////////////////////
  // histories: GET /api/StockPrice/SYMBOL, newest first, a few at a time

  const historyQueue = [];
  const historyQueued = new Set();
  let historyActive = 0;

  function loadHistory(symbols) {
    for (const symbol of symbols) {
      if (!historyQueued.has(symbol)) {
        historyQueued.add(symbol);
        historyQueue.push(symbol);
      }
    }

    while (historyActive < HISTORY_AT_ONCE && historyQueue.length) {
      const symbol = historyQueue.shift();

      historyActive++;

      fetch(`${LIST}/${encodeURIComponent(symbol)}`,
            { cache: 'no-store', headers: { Accept: 'application/json' } })
        .then((res) => (res.ok ? res.json() : null))
        .then((records) => {
          const s = series.get(symbol);

          if (!s || !Array.isArray(records)) {
            return;
          }

          let changed = false;

          for (const r of records.slice().reverse()) {
            if (valid(r) && r.symbol === symbol && addPoint(s, r)) {
              changed = true;
            }
          }

          if (changed) {
            render(s, false);
          }
        })
        .catch(() => {})
        .finally(() => {
          historyActive--;
          historyQueued.delete(symbol);
          loadHistory([]);
        });
    }
  }

  function reloadHistories() {
    loadHistory([...series.keys()]);
  }

  ///////////////////////////////////////////////////////////////////////////
  // the cards

  function svg(name, attrs) {
    const e = document.createElementNS(SVG, name);

    for (const [k, v] of Object.entries(attrs || {})) {
      e.setAttribute(k, v);
    }

    return e;
  }

  function el(name, cls, text) {
    const e = document.createElement(name);

    if (cls) {
      e.className = cls;
    }

    if (text !== undefined) {
      e.textContent = text;
    }

    return e;
  }

  function createSeries(symbol) {
    const card = el('li', 'quote');
    card.dataset.symbol = symbol;
    card.dataset.trend = 'none';

    const head = el('div', 'head');
    const name = el('h2', 'symbol', symbol);
    const price = el('data', 'price', '—');
    head.append(name, price);

    const change = el('p', 'change');
    change.dataset.dir = 'none';
    const arrow = el('span', 'arrow', '–');
    arrow.setAttribute('aria-hidden', 'true');
    const dir = el('span', 'dir visually-hidden', 'no earlier record');
    const amount = el('span', 'amount', '');
    const pct = el('span', 'pct', '');
    change.append(arrow, dir, amount, pct);

    const spark = svg('svg', {
      class: 'spark', viewBox: '0 0 100 32', preserveAspectRatio: 'none',
      role: 'img', 'aria-label': `${symbol}: no history yet`,
      'data-points': '0',
    });
    const area = svg('polygon', { class: 'area', points: '' });
    const line = svg('polyline', {
      class: 'line', points: '', 'vector-effect': 'non-scaling-stroke',
    });
    const dot = svg('line', {
      class: 'dot', x1: '0', y1: '0', x2: '0', y2: '0',
      'vector-effect': 'non-scaling-stroke',
    });
    spark.append(area, line, dot);

    const when = el('p', 'when');
    const time = el('time', '', '');
    const count = el('span', 'count', '');
    when.append('as of ', time, count);

    card.append(head, change, spark, when);

    // in the list's order: by symbol, byte order (as the API sorts)
    const list = $('quotes');
    let before = null;

    for (const other of list.children) {
      if (other.dataset.symbol > symbol) {
        before = other;
        break;
      }
    }

    list.insertBefore(card, before);

    const s = {
      symbol, points: [], ids: new Set(),
      el: { card, price, change, arrow, dir, amount, pct, spark, area, line,
            dot, time, count },
    };

    series.set(symbol, s);

    return s;
  }

  function removeSeries(symbol) {
    const s = series.get(symbol);

    if (s) {
      s.el.card.remove();
      series.delete(symbol);
    }
  }

  function signed(x, fmt) {
    // a sign that does not depend on colour: "+" up, "−" down
    return (x > 0 ? '+' : x < 0 ? '\u2212' : '\u00b1') + fmt.format(Math.abs(x));
  }

  function render(s, flash) {
    const pts = s.points;
    const e = s.el;

    if (!pts.length) {
      return;
    }

    const last = pts[pts.length - 1];
    const prev = pts.length > 1 ? pts[pts.length - 2] : null;

    const shown = priceFmt.format(last.price);

    if (e.price.textContent !== shown && flash) {
      e.card.classList.remove('flash');
      void e.card.offsetWidth;           // restart the animation
      e.card.classList.add('flash');
    }

    e.price.textContent = shown;
    e.price.value = String(last.price);

    // the change since the previous record of the symbol

    if (prev) {
      const d = last.price - prev.price;
      const dir = d > 0 ? 'up' : d < 0 ? 'down' : 'flat';

      e.change.dataset.dir = dir;
      e.arrow.textContent = dir === 'up' ? '▲' : dir === 'down' ? '▼' : '=';
      e.dir.textContent = dir === 'up' ? 'up' : dir === 'down' ? 'down'
        : 'unchanged';
      e.amount.textContent = signed(d, priceFmt);
      e.pct.textContent = prev.price !== 0
        ? `(${signed(d / Math.abs(prev.price) * 100, pctFmt)}%)` : '';
      e.change.title = `${e.dir.textContent} since the previous record `
        + `(${priceFmt.format(prev.price)})`;

    } else {
      e.change.dataset.dir = 'none';
      e.arrow.textContent = '–';
      e.dir.textContent = 'no earlier record';
      e.amount.textContent = '';
      e.pct.textContent = '';
      e.change.title = 'no earlier record';
    }

    const t = new Date(last.at);
    e.time.dateTime = t.toISOString();
    e.time.textContent = timeFmt.format(t);
    e.count.textContent = ` · ${pts.length} record${pts.length === 1 ? '' : 's'}`;

    drawSpark(s);
  }

  // the sparkline: the points oldest to newest across the box, the lowest
  // price at the bottom, the highest at the top; a dot on the newest

  function drawSpark(s) {
    const pts = s.points;
    const e = s.el;
    const W = 100;
    const H = 32;
    const PAD = 3;

    let lo = Infinity;
    let hi = -Infinity;

    for (const p of pts) {
      lo = Math.min(lo, p.price);
      hi = Math.max(hi, p.price);
    }

    const span = hi - lo;
    const x = (i) => (pts.length === 1 ? W / 2 : i * W / (pts.length - 1));
    const y = (v) => (span > 0 ? PAD + (hi - v) * (H - 2 * PAD) / span : H / 2);

    const xy = pts.map((p, i) => `${x(i).toFixed(2)},${y(p.price).toFixed(2)}`);

    e.line.setAttribute('points', xy.join(' '));
    e.area.setAttribute('points', pts.length > 1
      ? `${xy.join(' ')} ${W},${H} 0,${H}` : '');

    const lx = x(pts.length - 1).toFixed(2);
    const ly = y(pts[pts.length - 1].price).toFixed(2);

    for (const [k, v] of [['x1', lx], ['x2', lx], ['y1', ly], ['y2', ly]]) {
      e.dot.setAttribute(k, v);
    }

    const first = pts[0].price;
    const last = pts[pts.length - 1].price;

    e.card.dataset.trend = pts.length < 2 ? 'none'
      : last > first ? 'up' : last < first ? 'down' : 'flat';

    e.spark.setAttribute('data-points', String(pts.length));
    e.spark.setAttribute('aria-label', pts.length < 2
      ? `${s.symbol}: one price so far`
      : `${s.symbol}: last ${pts.length} prices, from ${priceFmt.format(first)}`
        + ` to ${priceFmt.format(last)}, low ${priceFmt.format(lo)},`
        + ` high ${priceFmt.format(hi)}`);
  }

  // the time of the last refresh: the newest of the records' measurement
  // times and the status's lastSuccess

  function noteRefresh(ms) {
    if (Number.isNaN(ms) || ms <= newest) {
      return;
    }

    newest = ms;

    const t = new Date(ms);
    const out = $('refreshed');

    out.dateTime = t.toISOString();
    out.textContent = timeFmt.format(t);
    out.title = dateTimeFmt.format(t);
  }

  ///////////////////////////////////////////////////////////////////////////
  // connection state: connecting, live, reconnecting, polling, offline

  const conn = $('conn');

  function setConn(state, detail) {
    const text = {
      connecting: 'connecting…',
      live: 'live',
      reconnecting: 'live, reconnecting…',
      polling: `polling every ${POLL_MS / 1000} s`,
      offline: 'offline',
    }[state];

    conn.dataset.state = state;
    $('conn-text').textContent = detail ? `${text} (${detail})` : text;
  }

  ///////////////////////////////////////////////////////////////////////////
  // the event stream

  let stream = null;
  let streamErrors = 0;
  let streamRetry = 0;
  let streamFresh = false;     // the next event is the whole list
  let missed = false;          // records may have been missed meanwhile

  function startStream() {
    clearTimeout(streamRetry);
    streamRetry = 0;

    if (typeof window.EventSource !== 'function') {
      startPolling();
      return;
    }

    if (stream) {
      return;
    }

    const es = new EventSource(LIST);

    stream = es;
    streamFresh = true;

    es.addEventListener('open', () => {
      if (stream !== es) {
        return;
      }

      if (streamErrors > 0 || polling) {
        missed = true;
      }

      streamErrors = 0;
      stopPolling();
      setConn('live');

      // the status counts this stream within a second or so
      clearTimeout(statusTimer);
      statusTimer = setTimeout(readStatus, 1500);
    });

    es.addEventListener('prices', (ev) => {
      if (stream !== es) {
        return;
      }

      let records;

      try {
        records = JSON.parse(ev.data);
      } catch (err) {
        return;
      }

      streamErrors = 0;
      setConn('live');
      conn.dataset.lastEventId = ev.lastEventId;

      apply(records, streamFresh);
      streamFresh = false;

      if (missed) {
        missed = false;
        reloadHistories();
      }
    });

    es.addEventListener('error', () => {
      if (stream !== es) {
        return;
      }

      streamErrors++;

      if (es.readyState === EventSource.CLOSED
          || streamErrors >= STREAM_ERRORS)
      {
        // refused (not an event stream, an HTTP error) or down for a
        // while: poll instead, try the stream again later
        es.close();
        stream = null;
        startPolling();
        streamRetry = setTimeout(startStream, STREAM_RETRY_MS);

      } else {
        // the browser reconnects by itself, with Last-Event-ID
        setConn('reconnecting');
      }
    });
  }

  ///////////////////////////////////////////////////////////////////////////
  // polling the list, with If-None-Match

  let polling = false;
  let pollRun = 0;
  let pollTimer = 0;
  let etag = null;

  function startPolling() {
    if (polling) {
      return;
    }

    polling = true;
    missed = true;
    poll(++pollRun);
  }

  function stopPolling() {
    polling = false;
    pollRun++;
    clearTimeout(pollTimer);
  }

  async function poll(run) {
    clearTimeout(pollTimer);

    try {
      const headers = { Accept: 'application/json' };

      if (etag) {
        headers['If-None-Match'] = etag;
      }

      const res = await fetch(LIST, { cache: 'no-store', headers });

      if (run !== pollRun) {
        return;
      }

      if (res.status === 200) {
        const records = await res.json();

        if (run !== pollRun) {
          return;
        }

        etag = res.headers.get('ETag');
        apply(records, true);

      } else if (res.status !== 304) {
        throw new Error(`HTTP ${res.status}`);
      }

      setConn('polling');

      if (missed) {
        missed = false;
        reloadHistories();
      }

    } catch (err) {
      if (run !== pollRun) {
        return;
      }

      setConn('offline', navigator.onLine === false ? 'no network'
        : 'the server does not answer');
    }

    pollTimer = setTimeout(() => poll(run), POLL_MS);
  }

  ///////////////////////////////////////////////////////////////////////////
  // the status: the feed's health

  const HEALTH_TEXT = {
    ok: 'ok', failing: 'failing', stale: 'stale', waiting: 'waiting',
    unknown: 'unknown',
  };

  // a time of today as the time alone, others with their date

  function fmtTime(iso) {
    const t = Date.parse(iso);

    if (Number.isNaN(t)) {
      return '—';
    }

    const d = new Date(t);

    return d.toDateString() === new Date().toDateString()
      ? timeFmt.format(d) : dateTimeFmt.format(d);
  }

  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min`
      : `${Math.round(s / 3600)} h`;
  }

  function fmtBytes(n) {
    return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB`
      : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
  }

  function setFact(id, text) {
    $(`h-${id}`).textContent = text;
  }

  function renderHealth(st) {
    const now = Date.now() + clockOffset;
    const last = Date.parse(st.lastSuccess);
    const next = Date.parse(st.nextRefresh);
    const limited = Date.parse(st.rateLimitedUntil);

    // the interval, as the status shows it: from the last success to the
    // next refresh (10 s if unknown); stale: no success for two intervals
    // and 10 s more
    let interval = next - last;

    if (!(interval > 0)) {
      interval = 10000;
    }

    let state;
    let summary;

    if (st.consecutiveFailures > 0) {
      state = 'failing';
      summary = `${st.consecutiveFailures} refresh`
        + `${st.consecutiveFailures === 1 ? '' : 'es'} in a row failed`
        + (st.lastError ? `: ${st.lastError}` : '')
        + (Number.isNaN(last) ? '; no successful refresh yet.'
          : `; the prices shown are ${fmtAge(now - last)} old.`);

    } else if (Number.isNaN(last)) {
      state = 'waiting';
      summary = 'No successful refresh yet.';

    } else if (now - last > 2 * interval + 10000) {
      state = 'stale';
      summary = `No successful refresh for ${fmtAge(now - last)}.`;

    } else {
      state = 'ok';
      summary = `Refreshed ${fmtAge(now - last)} ago, every `
        + `${fmtAge(interval)} or so.`;
    }

    if (limited > now) {
      summary += ` The upstream asked to wait until ${fmtTime(st.rateLimitedUntil)}.`;
    }

    const box = $('health');
    box.dataset.health = state;
    $('health-state').textContent = HEALTH_TEXT[state];
    $('health-summary').textContent = summary;

    setFact('authenticated', st.authenticated ? 'yes' : 'no');
    setFact('lastSuccess', fmtTime(st.lastSuccess));
    setFact('nextRefresh', fmtTime(st.nextRefresh));
    setFact('refreshes', String(st.refreshes ?? '—'));
    setFact('failures', String(st.failures ?? '—'));
    setFact('consecutiveFailures', String(st.consecutiveFailures ?? '—'));
    setFact('lastError', st.lastError || 'none');
    setFact('rateLimitedUntil', st.rateLimitedUntil
      ? fmtTime(st.rateLimitedUntil) : 'no');
    setFact('records', `${st.symbols ?? '—'} · ${st.records ?? '—'}`);
    setFact('streams', String(st.streams ?? '—'));
    setFact('zone', Number.isFinite(st.zoneBytesUsed)
      && Number.isFinite(st.zoneBytesTotal)
      ? `${fmtBytes(st.zoneBytesUsed)} of ${fmtBytes(st.zoneBytesTotal)}` : '—');

    noteRefresh(last);
  }

  let statusTimer = 0;

  async function readStatus() {
    clearTimeout(statusTimer);

    try {
      const res = await fetch(STATUS, {
        cache: 'no-store', headers: { Accept: 'application/json' },
      });

      if (!res.ok) {
        throw new Error(`HTTP ${res.status}`);
      }

      const date = Date.parse(res.headers.get('Date'));

      if (!Number.isNaN(date)) {
        // Date has whole seconds: only a difference of more than that counts
        const off = date - Date.now();
        clockOffset = Math.abs(off) > 1500 ? off : 0;
      }

      renderHealth(await res.json());

    } catch (err) {
      const box = $('health');
      box.dataset.health = 'unknown';
      $('health-state').textContent = HEALTH_TEXT.unknown;
      $('health-summary').textContent = 'The status cannot be read now ('
        + `${err.message}); what is shown below is the last known.`;
    }

    statusTimer = setTimeout(readStatus, STATUS_MS);
  }

  ///////////////////////////////////////////////////////////////////////////

  window.addEventListener('online', () => {
    readStatus();

    if (polling) {
      poll(++pollRun);
    }

    if (!stream) {
      startStream();
    }
  });

  window.addEventListener('offline', () => setConn('offline', 'no network'));

  setConn('connecting');
  startStream();
  readStatus();
}());
