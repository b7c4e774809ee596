// The live page (demo/www) and Swagger UI (/docs/) in a real browser:
// Debian's headless Chromium driven by playwright-core.  Run by t/browser.t,
// which starts nginx with demo/nginx.conf and reads what this prints: one
// line per check,
//
//   RESULT {"id":"load","name":"…","ok":true|false,"diag":"…"}
//   RESULT {"id":"docs","name":"…","skip":"why"}
//
// in the order of t/browser.t's list.  Environment:
//
//   STOCKPRICE_URL   the demo server, http://127.0.0.1:PORT
//   NGINX_PID        its master (SIGHUP: a reload, which closes the streams)
//   STOCKPRICE_ROOT  the repository (playwright-core, docs/, build/)
//   BROWSER_MARK     an extra switch on Chromium's command line, by which
//                    t/browser.t finds a browser left behind
//   CHROMIUM         the browser (default /usr/bin/chromium)
//
// Every wait is bounded; the browser is closed at the end, also after an
// error, and a watchdog ends the whole run before t/browser.t's own limit.

import { createRequire } from 'node:module';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = process.env.STOCKPRICE_ROOT
  || resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BASE = process.env.STOCKPRICE_URL;
const NGINX_PID = Number(process.env.NGINX_PID || 0);
const MARK = process.env.BROWSER_MARK || '--stockprice-browser-test';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const require = createRequire(import.meta.url);
const { chromium } = require(`${ROOT}/tools/node_modules/playwright-core`);

const ORIGIN = new URL(BASE).origin;
const SYMBOLS = ['AAPL', 'MSFT', 'SAP'];

// what the page's Content-Security-Policy must hold to (its <meta>): this
// host only, no inline script or style
const CSP_STRICT = {
  'default-src': ["'none'"], 'script-src': ["'self'"],
  'style-src': ["'self'"], 'connect-src': ["'self'"],
};

///////////////////////////////////////////////////////////////////////////////
// reporting

const reported = new Set();

function report(id, name, ok, diag) {
  reported.add(id);
  const r = { id, name, ok: !!ok };

  if (!ok && diag) {
    r.diag = String(diag);
  }

  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

function skip(id, name, why) {
  reported.add(id);
  process.stdout.write(`RESULT ${JSON.stringify({ id, name, skip: why })}\n`);
}

class Failure extends Error {}

function fail(msg) {
  throw new Failure(msg);
}

// run one check: it passes unless it throws; a Playwright timeout says
// what it waited for

async function check(id, name, fn) {
  try {
    await fn();
    report(id, name, true);
    return true;
  } catch (err) {
    report(id, name, false, err instanceof Failure ? err.message
      : (err && err.stack) || String(err));
    return false;
  }
}

// page.waitForFunction with a message of ours when it times out

async function waitFor(page, what, fn, arg, timeout) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (err) {
    if (err && err.name === 'TimeoutError') {
      fail(`${what}: not within ${timeout / 1000} s`);
    }
    throw err;
  }
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function api(path, headers) {
  const res = await fetch(ORIGIN + path, { headers: headers || {} });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function apiJSON(path) {
  const r = await api(path);
  if (r.status !== 200) {
    fail(`GET ${path}: ${r.status}`);
  }
  return JSON.parse(r.body);
}

// a price as the page shows it ("1,234.5678", "−0.12") as a number

function number(text) {
  const t = String(text).replace(/\u2212/g, '-').replace(/[,\s]/g, '')
    .replace(/^\u00b1/, '');
  return /^[-+]?\d+(\.\d+)?$/.test(t) ? Number(t) : NaN;
}

const near = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

///////////////////////////////////////////////////////////////////////////////
// what every page is watched for: console errors, page errors, requests
// (with their headers), CSP violations

const problems = [];      // { text, url, at }: console errors, page errors
const requests = [];      // { page, url, type, method, headers }
const responses = [];     // { page, url, status, headers }

function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      problems.push({ text: `${label}: console error: ${msg.text()}`
        + ` (${msg.location().url || '?'})`, message: msg.text(),
        url: msg.location().url, at: Date.now() });
    }
  });

  page.on('pageerror', (err) => {
    problems.push({ text: `${label}: page error: ${err.message}`,
                    at: Date.now() });
  });

  page.on('request', (req) => {
    const r = { page: label, url: req.url(), type: req.resourceType(),
                method: req.method(), headers: req.headers(), at: Date.now() };
    requests.push(r);
    req.allHeaders().then((h) => { r.headers = h; }, () => {});
  });

  page.on('response', (res) => {
    responses.push({ page: label, url: res.url(), status: res.status(),
                     headers: res.headers(), at: Date.now() });
  });
}

// a context whose pages record the violations of their CSP (no
// page.route() here: with interception on, Playwright no longer sees the
// headers Chromium adds, Last-Event-ID among them)

async function pageContext(browser, options) {
  const context = await browser.newContext({
    locale: 'en-US', timezoneId: 'UTC', serviceWorkers: 'block', ...options,
  });

  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI || 'inline'}`
        + ` at ${e.sourceFile || '?'}:${e.lineNumber || '?'}`);
    });
  });

  return context;
}

async function cspViolations(page) {
  return page.evaluate(() => window.__csp || []).catch(() => []);
}

///////////////////////////////////////////////////////////////////////////////
// in the page

// symbol -> { price text, change dir, arrow, amount, points }
function readQuotes(page) {
  return page.evaluate(() => {
    const out = {};
    for (const card of document.querySelectorAll('.quote')) {
      const q = (s) => card.querySelector(s);
      const line = q('svg.spark polyline');
      const pts = (line && line.getAttribute('points') || '').trim();
      out[card.dataset.symbol] = {
        symbol: q('.symbol') && q('.symbol').textContent,
        symbolVisible: !!(q('.symbol') && q('.symbol').offsetParent),
        price: q('.price') && q('.price').textContent,
        dir: q('.change') && q('.change').dataset.dir,
        arrow: q('.change .arrow') && q('.change .arrow').textContent,
        word: q('.change .dir') && q('.change .dir').textContent,
        amount: q('.change .amount') && q('.change .amount').textContent,
        changeColor: q('.change') && getComputedStyle(q('.change')).color,
        textColor: getComputedStyle(document.body).color,
        points: pts ? pts.split(/\s+/) : [],
        dataPoints: q('svg.spark') && q('svg.spark').getAttribute('data-points'),
      };
    }
    return out;
  });
}

function pricesShown(syms) {
  return syms.every((s) => {
    const c = document.querySelector(`.quote[data-symbol="${s}"] .price`);
    return c && /\d/.test(c.textContent);
  });
}

async function waitPrices(page, timeout) {
  await waitFor(page, `${SYMBOLS.join(', ')} with prices`, pricesShown,
                SYMBOLS, timeout);
}

// wait until some symbol's price text differs from "before"; the symbols
// that changed, with their quotes after

async function waitChange(page, before, timeout) {
  await waitFor(page, 'a price that changes', (b) => {
    for (const card of document.querySelectorAll('.quote')) {
      const p = card.querySelector('.price');
      if (p && b[card.dataset.symbol] !== undefined
          && p.textContent !== b[card.dataset.symbol]) {
        return true;
      }
    }
    return false;
  }, before, timeout);

  const after = await readQuotes(page);

  return Object.keys(before).filter((s) => after[s]
    && after[s].price !== before[s]).map((s) => ({ symbol: s, ...after[s] }));
}

function priceTexts(quotes) {
  return Object.fromEntries(Object.entries(quotes).map(([s, q]) => [s, q.price]));
}

// the change shown for a symbol whose price went from "old" to "cur"

function checkChange(c, old, cur) {
  const d = cur - old;
  const dir = d > 0 ? 'up' : d < 0 ? 'down' : 'flat';
  const arrow = { up: '▲', down: '▼', flat: '=' }[dir];

  if (c.dir !== dir) {
    fail(`${c.symbol}: ${old} -> ${cur} shown as "${c.dir}", not ${dir}`);
  }
  if (c.arrow !== arrow) {
    fail(`${c.symbol}: arrow "${c.arrow}", not ${arrow}`);
  }
  if (!/^(up|down|unchanged)$/.test(c.word || '')) {
    fail(`${c.symbol}: no words for the direction ("${c.word}")`);
  }

  const sign = (c.amount || '').charAt(0);
  const want = d > 0 ? '+' : d < 0 ? '\u2212' : '\u00b1';
  const amount = number(c.amount);

  if (sign !== want || !near(Math.abs(amount), Math.abs(d))) {
    fail(`${c.symbol}: change "${c.amount}", not ${want}${Math.abs(d)}`);
  }
  if (dir !== 'flat' && c.changeColor === c.textColor) {
    fail(`${c.symbol}: the change is not coloured (${c.changeColor})`);
  }
}

///////////////////////////////////////////////////////////////////////////////

const IDS = ['load', 'live', 'change', 'sparkline', 'refresh-time', 'health',
  'reconnect', 'screenshot', 'poll-prices', 'poll-update', 'health-failing',
  'offline', 'phone', 'console',
  'origin', 'csp', 'docs'];

let browser;

// from the SIGHUP to the browser's reconnect: nginx closes the stream
// without its last chunk, which Chromium logs as a failed load
const reloadWindow = { from: 0, to: 0 };

const watchdog = setTimeout(async () => {
  for (const id of IDS) {
    if (!reported.has(id)) {
      report(id, id, false, 'the script ran out of time (watchdog, 80 s)');
    }
  }
  try { await browser?.close(); } catch (e) { /* going anyway */ }
  process.exit(1);
}, 80000);

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      MARK,
      // nothing leaves loopback: names resolve to nothing, and anything
      // not on loopback (which Chromium never proxies) meets a closed port
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--proxy-server=http://127.0.0.1:9',
    ],
  });

  let okPage = false;
  let cspMeta = '';
  let inline = [];

  /////////////////////////////////////////////////////////////////////////////
  // the page with EventSource

  const ctx = await pageContext(browser, {
    viewport: { width: 1100, height: 900 },
  });
  const page = await ctx.newPage();
  watch(page, 'page');

  okPage = await check('load',
    'the page loads; MSFT, AAPL and SAP appear with their prices within 10 s',
    async () => {
      const res = await page.goto(`${ORIGIN}/`, { waitUntil: 'domcontentloaded' });
      if (!res || res.status() !== 200) {
        fail(`GET / answered ${res && res.status()}`);
      }

      await waitPrices(page, 10000);

      // the newest price of each symbol: the newest record before the
      // page is read, or one that came after it
      const h1 = {};
      for (const s of SYMBOLS) {
        h1[s] = await apiJSON(`/api/StockPrice/${s}`);
      }

      const q = await readQuotes(page);

      for (const s of SYMBOLS) {
        if (q[s].symbol !== s || !q[s].symbolVisible) {
          fail(`the card of ${s} shows "${q[s].symbol}"`
               + (q[s].symbolVisible ? '' : ' (not visible)'));
        }

        const h2 = await apiJSON(`/api/StockPrice/${s}`);
        const since = Date.parse(h1[s][0].measurementTimeStamp);
        const newest = h2.filter((r) => Date.parse(r.measurementTimeStamp) >= since);
        const shown = number(q[s].price);

        if (!newest.some((r) => near(shown, r.price))) {
          fail(`${s} shows ${q[s].price}, not its newest price `
               + `(${newest.map((r) => r.price).join(' or ')})`);
        }
      }

      ({ cspMeta, inline } = await page.evaluate(() => ({
        cspMeta: document.querySelector(
          'meta[http-equiv="Content-Security-Policy" i]')?.content || '',
        inline: [
          ...[...document.querySelectorAll('script:not([src]), style')]
            .map((e) => `<${e.localName}>`),
          ...[...document.querySelectorAll('*')].flatMap((e) => [...e.attributes]
            .filter((a) => a.name === 'style' || a.name.startsWith('on'))
            .map((a) => `${a.name}= on <${e.localName}>`)),
        ],
      })));

      const extra = Object.keys(q).filter((s) => !SYMBOLS.includes(s));
      if (extra.length) {
        fail(`symbols not served are shown: ${extra.join(', ')}`);
      }
    });

  await check('live', 'it listens to the event stream (state "live")',
    async () => {
      await waitFor(page, 'connection state "live"',
        () => document.querySelector('#conn').dataset.state === 'live'
          && /\blive\b/.test(document.querySelector('#conn').textContent),
        null, okPage ? 5000 : 500);

      const es = requests.filter((r) => r.page === 'page'
        && r.type === 'eventsource' && r.url === `${ORIGIN}/api/StockPrice`);
      if (!es.length) {
        fail('no EventSource request for /api/StockPrice');
      }
    });

  let changed = [];

  await check('change',
    'a refresh changes a price shown, with arrow, sign and colour of the change',
    async () => {
      if (!okPage) {
        fail('no prices shown');
      }

      const before = priceTexts(await readQuotes(page));
      changed = await waitChange(page, before, 8000);

      for (const c of changed) {
        checkChange(c, number(before[c.symbol]), number(c.price));
      }
    });

  await check('sparkline',
    'each sparkline draws the kept history and grows with the events',
    async () => {
      if (!okPage) {
        fail('no prices shown');
      }

      // as many points as the symbol has kept records (the page read the
      // history and has every event since), and more than one
      const kept = {};
      for (const s of SYMBOLS) {
        kept[s] = (await apiJSON(`/api/StockPrice/${s}`)).length;
      }

      await waitFor(page, `sparklines of at least ${JSON.stringify(kept)} `
        + 'points (the kept records)', (k) => Object.entries(k).every(([s, n]) => {
        const l = document.querySelector(`.quote[data-symbol="${s}"] svg.spark polyline`);
        const pts = l ? (l.getAttribute('points') || '').trim().split(/\s+/) : [];
        return l && pts[0] !== '' && pts.length >= Math.max(n, 2);
      }), kept, 4000);

      const q = await readQuotes(page);

      for (const s of SYMBOLS) {
        const pts = q[s].points.map((p) => p.split(',').map(Number));

        if (String(pts.length) !== q[s].dataPoints) {
          fail(`${s}: ${pts.length} points drawn, data-points ${q[s].dataPoints}`);
        }

        for (const [x, y] of pts) {
          if (!(x >= 0 && x <= 100 && y >= 0 && y <= 32)) {
            fail(`${s}: point ${x},${y} outside the box`);
          }
        }

        if (pts.length > 1 && pts[pts.length - 1][0] <= pts[0][0]) {
          fail(`${s}: the points do not run left to right`);
        }
      }

      // one more event: one more point somewhere
      const n0 = Object.fromEntries(SYMBOLS.map((s) => [s, q[s].points.length]));

      await waitFor(page, 'a sparkline that grows with the next event', (n) =>
        Object.entries(n).some(([s, c]) => {
          const l = document.querySelector(`.quote[data-symbol="${s}"] svg.spark polyline`);
          return l && (l.getAttribute('points') || '').trim().split(/\s+/).length > c;
        }), n0, 6000);
    });

  await check('refresh-time', 'the time of the last refresh is shown',
    async () => {
      const r = await page.evaluate(() => {
        const t = document.querySelector('#refreshed');
        return { text: t.textContent, dt: t.dateTime,
                 visible: !!t.offsetParent };
      });
      const at = Date.parse(r.dt);

      if (!r.visible || !/\d{1,2}:\d{2}:\d{2}/.test(r.text)) {
        fail(`last refresh shown as "${r.text}"`);
      }
      if (!(Math.abs(Date.now() - at) < 20000)) {
        fail(`last refresh ${r.dt} is not the last refresh (now ${new Date().toISOString()})`);
      }
    });

  await check('health', 'the health from the status is shown: ok, authenticated',
    async () => {
      await waitFor(page, 'health "ok"', () => {
        const h = document.querySelector('#health');
        return h.dataset.health === 'ok'
          && document.querySelector('#health-state').textContent === 'ok';
      }, null, okPage ? 5000 : 500);

      const st = await apiJSON('/api/StockPrice.status');
      const shown = await page.evaluate(() => ({
        authenticated: document.querySelector('#h-authenticated').textContent,
        refreshes: document.querySelector('#h-refreshes').textContent,
        lastError: document.querySelector('#h-lastError').textContent,
        failing: document.querySelector('#h-consecutiveFailures').textContent,
      }));

      if (shown.authenticated !== (st.authenticated ? 'yes' : 'no')) {
        fail(`authenticated shown "${shown.authenticated}", status says ${st.authenticated}`);
      }
      if (!(Number(shown.refreshes) > 0 && Number(shown.refreshes) <= st.refreshes)) {
        fail(`refreshes shown "${shown.refreshes}", status says ${st.refreshes}`);
      }
      if (shown.failing !== String(st.consecutiveFailures)
          || shown.lastError !== (st.lastError || 'none')) {
        fail(`failures shown ${shown.failing} / "${shown.lastError}", status says `
             + `${st.consecutiveFailures} / ${st.lastError}`);
      }
    });

  await check('reconnect',
    'a reload closes the stream; the browser reconnects with Last-Event-ID and the page goes on live',
    async () => {
      if (!okPage) {
        fail('no prices shown');
      }
      if (!NGINX_PID) {
        fail('NGINX_PID not given');
      }

      const ids = new Set();
      let watching = true;

      const idWatch = (async () => {
        while (watching) {
          const id = await page.evaluate(
            () => document.querySelector('#conn').dataset.lastEventId || '')
            .catch(() => '');
          if (id) {
            ids.add(id);
          }
          await sleep(50);
        }
      })();

      await sleep(200);

      const n0 = requests.filter((r) => r.type === 'eventsource').length;

      reloadWindow.from = Date.now();
      process.kill(NGINX_PID, 'SIGHUP');

      try {
        // Chromium's reconnection delay is 3 s
        const end = Date.now() + 10000;
        let again;

        while (Date.now() < end) {
          again = requests.filter((r) => r.type === 'eventsource').slice(n0);
          if (again.length && again[0].headers['last-event-id'] !== undefined) {
            break;
          }
          await sleep(100);
        }

        if (!again || !again.length) {
          fail('no new EventSource request within 10 s of the reload');
        }

        reloadWindow.to = again[0].at;

        const sent = again[0].headers['last-event-id'];

        if (!sent || !ids.has(sent)) {
          fail(`the reconnect sent Last-Event-ID ${JSON.stringify(sent)}, `
               + `the ids seen: ${[...ids].join(' ')}`);
        }

        await waitFor(page, 'state "live" again',
          () => document.querySelector('#conn').dataset.state === 'live',
          null, 5000);

        const before = priceTexts(await readQuotes(page));
        await waitChange(page, before, 8000);

      } finally {
        watching = false;
        await idWatch;
      }
    });

  await check('screenshot', 'a screenshot in build/page.png', async () => {
    const file = `${ROOT}/build/page.png`;
    await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
    const png = readFileSync(file);
    if (png.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a'
        || statSync(file).size < 10000) {
      fail(`${file} is not a PNG of the page (${statSync(file).size} bytes)`);
    }
  });

  const cspPage = await cspViolations(page);
  await ctx.close();

  /////////////////////////////////////////////////////////////////////////////
  // the same page without EventSource: polling

  const pctx = await pageContext(browser, {
    viewport: { width: 1100, height: 900 },
  });
  await pctx.addInitScript(() => { delete window.EventSource; });
  const ppage = await pctx.newPage();
  watch(ppage, 'polling page');

  let okPoll = await check('poll-prices',
    'without EventSource the page polls the list and shows the prices (state "polling")',
    async () => {
      await ppage.goto(`${ORIGIN}/`, { waitUntil: 'domcontentloaded' });

      if (await ppage.evaluate(() => 'EventSource' in window)) {
        fail('EventSource still there');
      }

      await waitPrices(ppage, 10000);
      await waitFor(ppage, 'connection state "polling"',
        () => document.querySelector('#conn').dataset.state === 'polling'
          && /polling/.test(document.querySelector('#conn').textContent),
        null, 3000);

      if (requests.some((r) => r.page === 'polling page' && r.type === 'eventsource')) {
        fail('an EventSource request all the same');
      }
    });

  await check('poll-update',
    'polling updates the prices, with If-None-Match: the ETag of the answer before',
    async () => {
      if (!okPoll) {
        fail('no prices shown');
      }

      const before = priceTexts(await readQuotes(ppage));
      const changedNow = await waitChange(ppage, before, 10000);

      for (const c of changedNow) {
        checkChange(c, number(before[c.symbol]), number(c.price));
      }

      // the polls in order: each after the first asks If-None-Match with
      // the ETag of the last 200 before it
      const list = `${ORIGIN}/api/StockPrice`;
      const polls = requests.filter((r) => r.page === 'polling page'
        && r.url === list && r.type === 'fetch');
      const answers = responses.filter((r) => r.page === 'polling page'
        && r.url === list);

      if (polls.length < 2) {
        fail(`${polls.length} poll(s) of the list`);
      }

      for (let i = 1; i < polls.length && i < answers.length; i++) {
        const ok200 = answers.slice(0, i).filter((a) => a.status === 200);
        const want = ok200.length ? ok200[ok200.length - 1].headers.etag : undefined;
        const sent = polls[i].headers['if-none-match'];

        if (!want || sent !== want) {
          fail(`poll ${i + 1} sent If-None-Match ${sent}, the ETag before was ${want}`);
        }
      }
    });

  const cspPoll = await cspViolations(ppage);
  await pctx.close();

  /////////////////////////////////////////////////////////////////////////////
  // a feed in trouble (the status answered by the test) and the network
  // gone (Chromium's offline mode), on a polling page; what this page logs
  // while offline is not held against it

  const fctx = await pageContext(browser, { viewport: { width: 1100, height: 900 } });
  await fctx.addInitScript(() => { delete window.EventSource; });

  let mock = null;

  await fctx.route(`${ORIGIN}/api/StockPrice.status`, async (route) => {
    if (!mock) {
      await route.continue();
      return;
    }
    await route.fulfill({ status: 200, contentType: 'application/json',
                          body: JSON.stringify(mock) });
  });

  const fpage = await fctx.newPage();
  watch(fpage, 'mocked page');

  const health = () => fpage.evaluate(() => ({
    state: document.querySelector('#health').dataset.health,
    badge: document.querySelector('#health-state').textContent,
    summary: document.querySelector('#health-summary').textContent,
    lastError: document.querySelector('#h-lastError').textContent,
    inARow: document.querySelector('#h-consecutiveFailures').textContent,
  }));

  const healthIs = (state, ms) => waitFor(fpage, `health "${state}"`,
    (s) => document.querySelector('#health').dataset.health === s
      && document.querySelector('#health-state').textContent === s,
    state, ms);

  await check('health-failing',
    'a failing feed is shown "failing" with consecutiveFailures and lastError, an old lastSuccess "stale"',
    async () => {
      await fpage.goto(`${ORIGIN}/`, { waitUntil: 'domcontentloaded' });
      await waitPrices(fpage, 10000);
      await healthIs('ok', 5000);

      const st = await apiJSON('/api/StockPrice.status');
      const now = Date.now();
      const iso = (ms) => new Date(ms).toISOString();
      const error = 'prices request failed: upstream answered 503 <&>';

      mock = { ...st, failures: st.failures + 3, consecutiveFailures: 3,
               lastError: error, lastSuccess: iso(now - 40000),
               nextRefresh: iso(now + 8000) };
      await healthIs('failing', 5000);

      let h = await health();
      if (!h.summary.includes('3 refreshes in a row failed')
          || !h.summary.includes(error) || h.lastError !== error
          || h.inARow !== '3') {
        fail(`failing shown as ${JSON.stringify(h)}`);
      }

      mock = { ...st, consecutiveFailures: 0, lastError: null,
               lastSuccess: iso(now - 600000), nextRefresh: iso(now - 590000) };
      await healthIs('stale', 5000);

      h = await health();
      if (!/No successful refresh for 10 min/.test(h.summary)) {
        fail(`stale shown as ${JSON.stringify(h)}`);
      }

      mock = null;
    });

  await check('offline',
    'without a network the page says "offline" (and the health unknown), and polls again when it is back',
    async () => {
      await fctx.setOffline(true);
      await waitFor(fpage, 'connection state "offline"',
        () => document.querySelector('#conn').dataset.state === 'offline'
          && /offline/.test(document.querySelector('#conn').textContent),
        null, 5000);
      await healthIs('unknown', 5000);

      await fctx.setOffline(false);
      await waitFor(fpage, 'connection state "polling" again',
        () => document.querySelector('#conn').dataset.state === 'polling',
        null, 5000);
      await healthIs('ok', 5000);
    });

  await fctx.close();

  /////////////////////////////////////////////////////////////////////////////
  // on a phone

  const mctx = await pageContext(browser, {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
    isMobile: true, hasTouch: true,
  });
  const mpage = await mctx.newPage();
  watch(mpage, 'phone page');

  await check('phone',
    'on a phone (390 px wide): no sideways scrolling, the cards fit; build/page-phone.png',
    async () => {
      await mpage.goto(`${ORIGIN}/`, { waitUntil: 'domcontentloaded' });
      await waitPrices(mpage, 10000);
      await waitFor(mpage, 'sparklines', () => [...document.querySelectorAll('svg.spark')]
        .every((s) => Number(s.getAttribute('data-points')) > 1), null, 5000);

      const m = await mpage.evaluate(() => ({
        viewport: document.querySelector('meta[name="viewport"]')?.content || '',
        inner: window.innerWidth,
        scroll: document.documentElement.scrollWidth,
        cards: [...document.querySelectorAll('.quote, .health')].map((c) => {
          const r = c.getBoundingClientRect();
          return { left: r.left, right: r.right };
        }),
        font: parseFloat(getComputedStyle(document.querySelector('.quote .price')).fontSize),
      }));

      if (!/width=device-width/.test(m.viewport)) {
        fail(`viewport meta "${m.viewport}"`);
      }
      if (m.inner > 400 || m.scroll > m.inner) {
        fail(`page ${m.scroll} px wide in a ${m.inner} px viewport`);
      }
      if (m.cards.some((c) => c.left < 0 || c.right > m.inner)) {
        fail(`a card outside the screen: ${JSON.stringify(m.cards)}`);
      }
      if (!(m.font >= 16)) {
        fail(`prices in ${m.font} px`);
      }

      await mpage.screenshot({ path: `${ROOT}/build/page-phone.png`, fullPage: true,
                               animations: 'disabled' });
    });

  const cspPhone = await cspViolations(mpage);
  await mctx.close();

  /////////////////////////////////////////////////////////////////////////////
  // what all three pages did

  await check('console', 'no console error, no page error', async () => {
    const closed = (p) => p.url === `${ORIGIN}/api/StockPrice`
      && p.message === 'Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING'
      && p.at >= reloadWindow.from && p.at <= (reloadWindow.to || Infinity);
    const bad = problems.filter((p) => !closed(p) && !/^mocked page/.test(p.text));

    if (bad.length) {
      fail(bad.map((p) => p.text).join('\n'));
    }
  });

  await check('origin', 'no request to anything but the page\'s own host',
    async () => {
      const away = requests.filter((r) => new URL(r.url).origin !== ORIGIN);
      if (away.length) {
        fail(away.map((r) => `${r.page}: ${r.type} ${r.url}`).join('\n'));
      }
      if (!requests.length) {
        fail('no requests recorded');
      }
    });

  await check('csp',
    'the page carries a strict Content-Security-Policy (default-src \'none\'; script, style, connect \'self\'), and nothing violates it',
    async () => {
      const v = [...cspPage, ...cspPoll, ...cspPhone];
      if (v.length) {
        fail(`violations:\n${v.join('\n')}`);
      }

      const dirs = {};
      for (const d of (cspMeta || '').split(';')) {
        const [name, ...values] = d.trim().split(/\s+/);
        if (name) {
          dirs[name.toLowerCase()] = values;
        }
      }

      for (const [name, want] of Object.entries(CSP_STRICT)) {
        if (JSON.stringify(dirs[name]) !== JSON.stringify(want)) {
          fail(`the page's CSP has ${name} ${JSON.stringify(dirs[name])}, `
               + `not ${want.join(' ')}: "${cspMeta}"`);
        }
      }

      if (inline.length) {
        fail(`inline script or style: ${inline.join(', ')}`);
      }
    });

  /////////////////////////////////////////////////////////////////////////////
  // Swagger UI

  const docsName = 'Swagger UI at /docs/ lists /api/StockPrice and /api/StockPrice/{symbol}, all from this host';

  if (!existsSync(`${ROOT}/docs/openapi.yaml`)) {
    skip('docs', docsName, 'docs/openapi.yaml is not there yet');

  } else {
    const dctx = await browser.newContext({ locale: 'en-US', serviceWorkers: 'block' });
    const dpage = await dctx.newPage();
    watch(dpage, 'docs');
    const n0 = problems.length;

    await check('docs', docsName, async () => {
      const res = await dpage.goto(`${ORIGIN}/docs/`, { waitUntil: 'domcontentloaded' });
      if (!res || res.status() !== 200) {
        fail(`GET /docs/ answered ${res && res.status()}`);
      }

      const want = ['/api/StockPrice', '/api/StockPrice/{symbol}'];

      try {
        await dpage.waitForFunction((w) => {
          const paths = [...document.querySelectorAll('.opblock-summary-path')]
            .map((e) => e.dataset.path || e.textContent.replace(/\u200b/g, ''));
          return w.every((p) => paths.includes(p));
        }, want, { timeout: 15000, polling: 200 });
      } catch (err) {
        const paths = await dpage.evaluate(() => [...document.querySelectorAll(
          '.opblock-summary-path')].map((e) => e.dataset.path
          || e.textContent.replace(/\u200b/g, ''))).catch(() => []);
        fail(`paths listed: ${JSON.stringify(paths)}, want ${JSON.stringify(want)}`
             + (problems.length > n0 ? `\n${problems.slice(n0).join('\n')}` : ''));
      }

      const away = requests.filter((r) => r.page === 'docs'
        && new URL(r.url).origin !== ORIGIN);
      if (away.length) {
        fail(`requests elsewhere: ${away.map((r) => r.url).join(' ')}`);
      }

      await dpage.screenshot({ path: `${ROOT}/build/docs.png` });
    });

    await dctx.close();
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`page.mjs: ${(err && err.stack) || err}\n`);
  for (const id of IDS) {
    if (!reported.has(id)) {
      report(id, id, false, `not reached: ${(err && err.message) || err}`);
    }
  }
} finally {
  try {
    await browser?.close();
  } catch (err) {
    process.stderr.write(`page.mjs: closing the browser: ${err}\n`);
  }
  clearTimeout(watchdog);
}
