// Real-browser test of the web console at /console/: Debian's Chromium driven by playwright-core,
// checked against the REST API from Node. Configured by environment:
//   FERROMQ_URL      the server, e.g. http://127.0.0.1:8098 (it must serve /console/)
//   FERROMQ_TOKEN    a token valid for every project
//   FERROMQ_PROJECT  the project to use (default console-test)
//   SCREENSHOT_DIR   where to write a PNG of each page (optional)
//   FERROMQ_MANAGED_QUEUE  a queue of FERROMQ_PROJECT declared by a Queue resource (optional)
//   CHROMIUM         the browser (default /usr/bin/chromium)
// Every step runs even when one before it failed (each opens its own page by URL); the run
// ends with "N passed, N failed" and exits non-zero when a step failed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.FERROMQ_URL || '').replace(/\/+$/, '');
const TOKEN = process.env.FERROMQ_TOKEN || '';
const PROJECT = process.env.FERROMQ_PROJECT || 'console-test';
const SHOTS = process.env.SCREENSHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MANAGED = process.env.FERROMQ_MANAGED_QUEUE || '';
if (!BASE || !TOKEN) {
  console.error('console test: set FERROMQ_URL (e.g. http://127.0.0.1:8080) and FERROMQ_TOKEN (valid for every project)');
  process.exit(2);
}
const CONSOLE = `${BASE}/console/`;
const RUN = `ct-${Date.now().toString(36)}`; // queue names unique to this run
const q = (name) => `${RUN}-${name}`;
const WAIT = 10_000; // ms any one condition may take

// ---------------------------------------------------------------------------------------------
// REST, from Node

async function rest(method, route, body) {
  const response = await fetch(`${BASE}/3/projects/${encodeURIComponent(PROJECT)}${route}`, {
    method,
    headers: { Authorization: `OAuth ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, data: await response.json().catch(() => null) };
}

async function restOk(method, route, body) {
  const { status, data } = await rest(method, route, body);
  assert.ok(status >= 200 && status < 300, `REST ${method} ${route} answered ${status} ${JSON.stringify(data)}`);
  return data;
}

const post = async (queue, ...bodies) =>
  (await restOk('POST', `/queues/${queue}/messages`, { messages: bodies.map((body) => ({ body })) })).ids;

/** The msg the API answers to a request that must fail: the console must show the same text. */
async function apiRefusal(method, route, body) {
  const { status, data } = await rest(method, route, body);
  assert.ok(status >= 400 && status < 500 && data && data.msg, `expected REST ${method} ${route} to be refused, got ${status} ${JSON.stringify(data)}`);
  return data.msg;
}

let statsAvailable; // does the server have GET .../stats (an extension)?

/** Leaves the project as it was: deletes this run's queues (best effort). */
async function removeQueues() {
  const { data } = await rest('GET', `/queues?per_page=100&prefix=${RUN}`).catch(() => ({}));
  for (const { name } of (data && data.queues) || []) await rest('DELETE', `/queues/${name}`).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Waiting on conditions: retried until they hold or the time is up, never a fixed sleep.

async function eventually(what, check, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} (still not true after ${timeout} ms): ${last && last.message}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

const visible = (locator, what) => locator.first().waitFor({ state: 'visible', timeout: WAIT })
  .catch((e) => { throw new Error(`${what} is not visible: ${e.message.split('\n')[0]}`); });

/** A table row as {header: cell text}, the row found by `rowName` (a link's name or a cell's text). */
async function rowValues(page, tableName, rowName) {
  const table = page.getByRole('table', { name: tableName });
  const headers = (await table.locator('thead th').allInnerTexts()).map((t) => t.trim());
  const byLink = table.getByRole('row').filter({ has: page.getByRole('link', { name: rowName, exact: true }) });
  const row = (await byLink.count()) > 0 ? byLink : table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: rowName, exact: true }) });
  const cells = (await row.first().locator('th, td').allInnerTexts()).map((t) => t.trim());
  // Tables are redrawn as data arrives: a read that caught only part of one is retried by the caller.
  assert.ok(headers.length > 0, `no table "${tableName}"`);
  assert.equal(cells.length, headers.length, `no complete row ${rowName} in the table "${tableName}"`);
  return Object.fromEntries(headers.map((header, i) => [header, cells[i]]));
}

// ---------------------------------------------------------------------------------------------
// Steps

const results = [];
let page;

async function shot(name) {
  if (!SHOTS || !page) return;
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }).catch(() => {});
}

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false, message: e.message });
    console.log(`FAIL  ${name}: ${e.message}`);
    await shot(`failed-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`);
  }
}

/** Opens a console route (a hash such as #/p/demo) as a fresh load. */
async function open(hash = '') {
  await page.goto(`${CONSOLE}${hash}`);
  await page.reload(); // a hash-only goto does not reload: start every step from a clean page
}

const route = {
  list: () => `#/p/${PROJECT}`,
  queue: (name, section = '') => `#/p/${PROJECT}/q/${name}${section ? `/${section}` : ''}`,
  newQueue: () => `#/p/${PROJECT}/new`,
};

async function signInWithMouse() {
  await open();
  await page.getByLabel('Token', { exact: true }).fill(TOKEN);
  await page.getByLabel('Project (optional)').fill(PROJECT);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await visible(page.getByRole('heading', { level: 1, name: `Queues of ${PROJECT}` }), 'the queue list after signing in');
}

/** A subscriber for push queues: answers 200 and remembers the message ids it got. */
function startSubscriber() {
  const received = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(req.headers['iron-message-id']);
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, received, port: server.address().port })));
}

async function main() {
  if (SHOTS) fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Report CSP violations as console errors, which are collected below.
  await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) =>
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`)));
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`uncaught error: ${e.message}`));
  page.on('console', (m) => {
    // A 404 from a route the server lacks is logged by the browser; the console handles it.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  statsAvailable = (await rest('GET', '/queues/none-such/stats')).data?.msg !== 'Not found';
  const subscriber = await startSubscriber();

  try {
    await runSteps(subscriber, problems);
  } finally {
    subscriber.server.close();
    await browser.close();
    await removeQueues();
  }
}

async function runSteps(subscriber, problems) {
  await step('the console is served with its Content-Security-Policy', async () => {
    for (const file of ['', 'app.js', 'app.css']) {
      const response = await fetch(`${CONSOLE}${file}`);
      assert.equal(response.status, 200, `GET /console/${file} answered ${response.status}`);
      const csp = response.headers.get('content-security-policy') || '';
      assert.match(csp, /default-src 'none'/, `GET /console/${file} has no strict Content-Security-Policy (got "${csp}")`);
      assert.match(csp, /script-src 'self'/, `GET /console/${file}: the policy must allow the console's own script`);
    }
  });

  await step('the sign-in page has a labelled token field (type password) and project field', async () => {
    await open();
    await visible(page.getByRole('heading', { level: 1, name: 'Sign in' }), 'the sign-in heading');
    assert.equal(await page.getByLabel('Token', { exact: true }).getAttribute('type'), 'password', 'the token field must be a password field');
    await visible(page.getByLabel('Project (optional)'), 'the project field');
    await shot('01-sign-in');
  });

  await step('a wrong token is refused with a visible message', async () => {
    // The server's own words for a wrong token (401 "Invalid OAuth token").
    const refused = await fetch(`${BASE}/3/projects/${encodeURIComponent(PROJECT)}/queues`, { headers: { Authorization: `OAuth wrong-${RUN}` } });
    const expected = (await refused.json()).msg;
    assert.equal(refused.status, 401, 'REST with a wrong token');
    await open();
    await page.getByLabel('Token', { exact: true }).fill(`wrong-${RUN}`);
    await page.getByLabel('Project (optional)').fill(PROJECT);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await visible(page.getByRole('alert').filter({ hasText: expected }), `the message "${expected}"`);
    await visible(page.getByRole('heading', { level: 1, name: 'Sign in' }), 'the sign-in page (still)');
  });

  await step('sign in (the token stays out of the URL, in sessionStorage)', async () => {
    await signInWithMouse();
    assert.ok(!page.url().includes(TOKEN), `the token is in the URL ${page.url()}`);
    const stored = await page.evaluate(() => Object.values(sessionStorage));
    assert.ok(stored.includes(TOKEN), 'the token is not in sessionStorage');
    const local = await page.evaluate(() => JSON.stringify(localStorage));
    assert.ok(!local.includes(TOKEN), 'the token must not be in localStorage');
  });

  const listQueue = q('list');
  const listIds = [];
  await step('a queue posted to over REST appears in the list with its size', async () => {
    listIds.push(...(await post(listQueue, 'hello console 1', 'hello console 2', 'hello console 3')));
    await open(route.list());
    const table = `Queues of project ${PROJECT}`;
    await visible(page.getByRole('link', { name: listQueue, exact: true }), `the queue ${listQueue} in the list`);
    await eventually(`the list shows ${listQueue} with size 3 and type pull`, async () => {
      const row = await rowValues(page, table, listQueue);
      assert.equal(row.Size, '3', `Size is ${row.Size}`);
      assert.equal(row.Type, 'pull', `Type is ${row.Type}`);
    });
    await shot('02-queue-list');
  });

  await step('the list shows reserved messages and oldest age per queue (GET .../stats extension)', async () => {
    assert.ok(statsAvailable, 'the server has no GET .../queues/{q}/stats');
    await restOk('POST', `/queues/${listQueue}/reservations`, { n: 1, timeout: 600 });
    await open(route.list());
    await eventually(`the list shows 1 reserved message of ${listQueue}`, async () => {
      const row = await rowValues(page, `Queues of project ${PROJECT}`, listQueue);
      assert.equal(row.Reserved, '1', `Reserved is "${row.Reserved}"${row.Reserved === '—' ? ' (no stats from the server)' : ''}`);
      assert.notEqual(row['Oldest message'], '—', 'Oldest message is not shown');
    });
  });

  await step('the list filters by name and sorts by a header button with aria-sort', async () => {
    await open(route.list());
    const table = page.getByRole('table', { name: `Queues of project ${PROJECT}` });
    await visible(table.getByRole('link', { name: listQueue, exact: true }), 'the queue in the list');
    await page.getByLabel('Filter by name').fill(listQueue);
    await eventually('only the filtered queue is listed', async () => {
      const names = await table.locator('tbody th').allInnerTexts();
      assert.ok(names.length >= 1 && names.every((n) => n.includes(listQueue)), `rows: ${names.join(', ')}`);
    });
    const sizeHeader = table.getByRole('columnheader', { name: 'Size' });
    await sizeHeader.getByRole('button').click();
    await eventually('Size sorts ascending', async () => assert.equal(await sizeHeader.getAttribute('aria-sort'), 'ascending'));
    await sizeHeader.getByRole('button').click();
    await eventually('Size sorts descending', async () => assert.equal(await sizeHeader.getAttribute('aria-sort'), 'descending'));
    await page.getByLabel('Filter by name').fill('');
  });

  await step('the queue page shows depth and throughput charts', async () => {
    await open(route.list());
    await page.getByRole('link', { name: listQueue, exact: true }).click();
    await visible(page.getByRole('heading', { level: 1, name: listQueue }), 'the queue heading');
    await visible(page.getByRole('img', { name: /^Depth/ }), 'the depth chart');
    await visible(page.getByRole('img', { name: /^Throughput/ }), 'the throughput chart');
    await shot('03-queue');
  });

  await step('the queue page charts show the last 24 hours (GET .../stats extension)', async () => {
    assert.ok(statsAvailable, 'the server has no GET .../queues/{q}/stats');
    await open(route.queue(listQueue));
    await eventually('the depth chart has a line and says the queue holds 3 messages', async () => {
      const chart = page.getByRole('img', { name: /^Depth/ });
      assert.match(await chart.getAttribute('aria-label'), /now 3 messages/);
      assert.ok((await chart.locator('path.line').count()) > 0, 'the depth chart draws no line');
    });
    // The server records its per-minute history every few seconds; the page polls and merges it.
    await eventually('the throughput chart counts the 3 posted messages', async () => {
      const label = await page.getByRole('img', { name: /^Throughput/ }).getAttribute('aria-label');
      assert.match(label, /\b3 posted\b/, `the chart says "${label}"`);
    }, 20_000);
  });

  await step('peek shows the body of a message', async () => {
    await open(route.queue(listQueue));
    await page.getByRole('link', { name: 'Messages', exact: true }).click();
    await page.getByLabel('Number of messages').fill('10');
    await page.getByRole('button', { name: 'Peek' }).click();
    const table = page.getByRole('table', { name: `Messages of ${listQueue}` });
    await visible(table.getByText('hello console 2'), 'the body "hello console 2" in the peek table');
    await shot('04-messages');
  });

  await step('a message is looked up by its id', async () => {
    await open(route.queue(listQueue, 'messages'));
    await page.getByLabel('Message id').fill(listIds[2]);
    await page.getByRole('button', { name: 'Look up' }).click();
    await visible(page.getByText('hello console 3'), 'the body of the message looked up');
  });

  const postQueue = q('post');
  await step('a message posted from the console is reserved over REST with its body', async () => {
    await restOk('PUT', `/queues/${postQueue}`, { queue: {} });
    await open(route.queue(postQueue, 'messages'));
    const body = `from the browser ${RUN} <b>not markup</b>`;
    await page.getByLabel('Message body').fill(body);
    await page.getByRole('button', { name: 'Post message' }).click();
    await visible(page.getByRole('status').filter({ hasText: /Posted message/ }), 'the "Posted message" status');
    const { messages } = await restOk('POST', `/queues/${postQueue}/reservations`, { n: 1, timeout: 30 });
    assert.equal(messages.length, 1, 'REST reserved no message');
    assert.equal(messages[0].body, body);
  });

  await step('a message is deleted from the console after confirming', async () => {
    const [id] = await post(postQueue, 'delete me');
    await open(route.queue(postQueue, 'messages'));
    await page.getByLabel('Message id').fill(id);
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByRole('button', { name: 'Delete this message' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete message' }).click();
    await eventually('REST no longer finds the message', async () =>
      assert.equal((await rest('GET', `/queues/${postQueue}/messages/${id}`)).status, 404));
  });

  await step('clearing the queue asks first, and clears it once confirmed', async () => {
    await open(route.queue(listQueue, 'messages'));
    await page.getByRole('button', { name: 'Clear queue…' }).click();
    const dialog = page.getByRole('dialog', { name: `Clear ${listQueue}?` });
    await visible(dialog, 'the confirmation dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await restOk('GET', `/queues/${listQueue}`)).queue.size, 3, 'cancelling must not clear the queue');
    await page.getByRole('button', { name: 'Clear queue…' }).click();
    await dialog.getByRole('button', { name: 'Clear queue' }).click();
    await visible(page.getByRole('status').filter({ hasText: `Cleared ${listQueue}` }), 'the "Cleared" status');
    await eventually('REST shows size 0', async () => assert.equal((await restOk('GET', `/queues/${listQueue}`)).queue.size, 0));
  });

  const pushQueue = q('push');
  let pushedId;
  await step('a push queue lists its subscribers', async () => {
    await restOk('PUT', `/queues/${pushQueue}`, { queue: { type: 'multicast', push: {
      subscribers: [{ name: 'printer', url: `http://127.0.0.1:${subscriber.port}/hook` }], retries: 0 } } });
    [pushedId] = await post(pushQueue, 'push me');
    await eventually('the subscriber receives the message', async () => assert.ok(subscriber.received.includes(pushedId)), 20_000);
    await open(route.queue(pushQueue));
    await page.getByRole('link', { name: 'Push', exact: true }).click();
    await eventually('the subscriber row shows its URL', async () => {
      const row = await rowValues(page, `Subscribers of ${pushQueue}`, 'printer');
      assert.equal(row.URL, `http://127.0.0.1:${subscriber.port}/hook`);
    });
    await shot('05-push');
  });

  await step('push subscribers show delivered / accepted / failed counts (GET .../stats extension)', async () => {
    assert.ok(statsAvailable, 'the server has no GET .../queues/{q}/stats');
    await open(route.queue(pushQueue, 'push'));
    await eventually('printer shows 1 delivered', async () => {
      const row = await rowValues(page, `Subscribers of ${pushQueue}`, 'printer');
      assert.equal(row.Delivered, '1', `Delivered is "${row.Delivered}"`);
      assert.equal(row.Failed, '0', `Failed is "${row.Failed}"`);
    }, 20_000); // the page polls every few seconds
  });

  await step('the push status of a message is shown', async () => {
    await open(route.queue(pushQueue, 'push'));
    await page.getByLabel('Message id').fill(pushedId || '0');
    await page.getByRole('button', { name: 'Show push status' }).click();
    await eventually('the push status row shows status code 200', async () => {
      const row = await rowValues(page, `Push status of message ${pushedId}`, 'printer');
      assert.equal(row['Status code'], '200');
    });
  });

  await step('saving a push queue\'s settings keeps what the form does not show', async () => {
    const hook = `http://127.0.0.1:${subscriber.port}/hook`;
    await restOk('PUT', `/queues/${pushQueue}`, { queue: { push: {
      subscribers: [{ name: 'printer', url: hook, retries: 7, retries_delay: 30 }] } } });
    await open(route.queue(pushQueue, 'settings'));
    await page.getByLabel('Reservation timeout (seconds)').fill('90');
    await shot('07-settings');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await eventually('REST shows the new timeout', async () =>
      assert.equal((await restOk('GET', `/queues/${pushQueue}`)).queue.message_timeout, 90));
    const { queue } = await restOk('GET', `/queues/${pushQueue}`);
    const [printer, ...others] = queue.push.subscribers;
    assert.deepEqual(others, [], 'one subscriber');
    assert.deepEqual([printer.name, printer.url, printer.retries, printer.retries_delay], ['printer', hook, 7, 30]);
  });

  await step('a managed queue is read-only and names its resource', async () => {
    assert.ok(MANAGED, 'set FERROMQ_MANAGED_QUEUE to a queue declared by a Queue resource');
    const { queue } = await restOk('GET', `/queues/${MANAGED}`);
    assert.ok(queue.managed_by, `${MANAGED} is not managed: ${JSON.stringify(queue)}`);
    await open(route.list());
    await visible(page.getByRole('row').filter({ hasText: MANAGED }).getByText('managed', { exact: true }), 'the "managed" badge in the list');
    await open(route.queue(MANAGED, 'settings'));
    await visible(page.getByRole('note').filter({ hasText: queue.managed_by }), 'the notice naming the resource');
    assert.equal(await page.getByRole('button', { name: 'Save settings' }).count(), 0, 'a managed queue offers no save');
    assert.ok(await page.getByLabel('Reservation timeout (seconds)').isDisabled(), 'the settings are read-only');
    await shot('09-managed');
  });

  const newQueue = q('created');
  await step('a queue created in the console exists over REST with its settings', async () => {
    await open(route.list());
    await page.getByRole('link', { name: 'New queue' }).click();
    await page.getByLabel('Queue name').fill(newQueue);
    await page.getByLabel('Type', { exact: true }).selectOption('pull');
    await page.getByLabel('Reservation timeout (seconds)').fill('120');
    await page.getByLabel('Dead-letter queue', { exact: true }).fill(`${newQueue}-dead`);
    await page.getByLabel('Maximum reservations').fill('3');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await visible(page.getByRole('heading', { level: 1, name: newQueue }), 'the new queue\'s page');
    const { queue } = await restOk('GET', `/queues/${newQueue}`);
    assert.equal(queue.message_timeout, 120);
    assert.deepEqual(queue.dead_letter, { queue_name: `${newQueue}-dead`, max_reservations: 3 });
  });

  await step('a bad setting shows the API\'s msg (reservation timeout of 10 s)', async () => {
    const expected = await apiRefusal('PUT', `/queues/${newQueue}`, { queue: { message_timeout: 10 } });
    await open(route.queue(newQueue, 'settings'));
    await page.getByLabel('Reservation timeout (seconds)').fill('10');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await visible(page.getByRole('alert').filter({ hasText: expected }), `the API's message "${expected}"`);
    assert.equal((await restOk('GET', `/queues/${newQueue}`)).queue.message_timeout, 120, 'the bad value must not be stored');
  });

  await step('a subscriber URL that is not a URL shows the API\'s msg and creates nothing', async () => {
    const badQueue = q('bad');
    const expected = await apiRefusal('PUT', `/queues/${badQueue}`,
      { queue: { type: 'multicast', push: { subscribers: [{ name: 'hook', url: 'not a url' }] } } });
    await open(route.newQueue());
    await page.getByLabel('Queue name').fill(badQueue);
    await page.getByLabel('Type', { exact: true }).selectOption('multicast');
    const sub = page.getByRole('group', { name: 'Subscriber 1' });
    await sub.getByLabel('Name').fill('hook');
    await sub.getByLabel('URL').fill('not a url');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await visible(page.getByRole('alert').filter({ hasText: expected }), `the API's message "${expected}"`);
    assert.equal((await rest('GET', `/queues/${badQueue}`)).status, 404, 'the queue must not exist');
  });

  await step('a dead-letter queue shows its messages and redrives them to the source', async () => {
    const source = q('dl');
    const dead = `${source}-dead`;
    await restOk('PUT', `/queues/${source}`, { queue: { dead_letter: { queue_name: dead, max_reservations: 1 } } });
    await post(source, 'dead letter');
    // Reserved once with a 1 s timeout, the next reservation moves it to the dead-letter queue.
    await eventually('the message reaches the dead-letter queue', async () => {
      await restOk('POST', `/queues/${source}/reservations`, { n: 1, timeout: 1 });
      assert.equal((await restOk('GET', `/queues/${dead}`)).queue.size, 1);
    });
    await open(route.queue(dead, 'redrive'));
    await page.getByRole('button', { name: 'Show the first 20 messages' }).click();
    await visible(page.getByRole('table', { name: `Messages of ${dead}` }).getByText('dead letter'), 'the dead letter\'s body');
    await shot('08-redrive');
    await page.getByRole('button', { name: 'Start redrive' }).click();
    await eventually('REST shows the message back in the source queue', async () => {
      assert.equal((await restOk('GET', `/queues/${source}`)).queue.size, 1);
      assert.equal((await restOk('GET', `/queues/${dead}`)).queue.size, 0);
    });
    await visible(page.getByText(/Redrive (done|started)/), 'the redrive status');
  });

  await step('a narrow screen (390 px) has no sideways scrolling: tables scroll in their box', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const hash of [route.list(), route.queue(pushQueue, 'push'), route.newQueue()]) {
        await open(hash);
        await visible(page.getByRole('heading', { level: 1 }), `the heading of ${hash}`);
        if (hash === route.list()) {
          await visible(page.getByRole('table', { name: `Queues of project ${PROJECT}` }), 'the queue table');
          await shot('06-narrow');
        }
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 390, `${hash} is ${width} px wide on a 390 px screen`);
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  await step('sign in with the keyboard only (Tab, typing, Enter), focus visible', async () => {
    await open(route.list());
    await page.getByRole('button', { name: 'Sign out' }).click();
    await visible(page.getByRole('heading', { level: 1, name: 'Sign in' }), 'the sign-in page after signing out');
    await page.reload(); // start from the top of a fresh page, focus nowhere
    const focusedLabel = () => page.evaluate(() => document.activeElement?.labels?.[0]?.textContent ?? document.activeElement?.textContent ?? '');
    for (let i = 0; i < 10 && (await focusedLabel()) !== 'Token'; i++) await page.keyboard.press('Tab');
    assert.equal(await focusedLabel(), 'Token', 'Tab never reaches the token field');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused field shows no focus outline');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Tab');
    assert.equal(await focusedLabel(), 'Project (optional)', 'Tab from the token does not reach the project field');
    await page.keyboard.type(PROJECT);
    await page.keyboard.press('Enter');
    await visible(page.getByRole('heading', { level: 1, name: `Queues of ${PROJECT}` }), 'the queue list after a keyboard sign-in');
  });

  await step('no script error and no Content-Security-Policy violation in the page', async () => {
    assert.deepEqual(problems, []);
  });
}

main().then(() => {
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.log('\nFailed steps:');
    for (const f of failed) console.log(`- ${f.name}: ${f.message}`);
  }
  console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length > 0 ? 1 : 0);
}, (e) => {
  console.error(`console test could not run: ${e.stack || e}`);
  process.exit(1);
});
