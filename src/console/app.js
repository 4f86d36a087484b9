// ferromq web console: a single-page client of the IronMQ v3 REST API served next to it.
// Plain ES2020 with no dependencies, written for a strict Content-Security-Policy: no inline
// styles, no innerHTML with data (every text goes through textContent), no eval.

// ---------------------------------------------------------------------------------------------
// DOM helpers

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an element. Strings among the children become text nodes, never markup. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), v);
    else if (key === 'class') el.className = v;
    else if (key === 'for') el.htmlFor = v;
    else if (key === 'value') value = v; // set after the children: a <select> needs its options first
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  if (value !== undefined) el.value = value;
  return el;
}

/** Creates an SVG element with attributes. */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, v] of Object.entries(attrs)) el.setAttribute(key, String(v));
  el.append(...children);
  return el;
}

let lastId = 0;
/** A unique element id, so every label can point at its control. */
const uid = (prefix) => `${prefix}-${++lastId}`;

/** A labelled form control; `hint` is linked with aria-describedby. */
function field(labelText, control, hint) {
  if (!control.id) control.id = uid('f');
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control);
  if (hint) {
    const hintId = uid('hint');
    control.setAttribute('aria-describedby', hintId);
    wrap.append(h('p', { class: 'hint', id: hintId }, hint));
  }
  return wrap;
}

const textInput = (props = {}) => h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...props });

function select(options, value, props = {}) {
  return h('select', { ...props, value }, options.map(([v, label]) => h('option', { value: v }, label)));
}

/** A description list from [term, value] pairs; values may be nodes. Pairs with a null value are left out. */
function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined)
    .map(([term, v]) => h('div', {}, h('dt', {}, term), h('dd', {}, v))));
}

/** A table that scrolls sideways on its own on a narrow screen; focusable so keyboards can scroll it. */
function scrollBox(table, label) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: 0 }, table);
}

/** Marks a button busy while its action runs, so it is not pressed twice. */
async function busy(button, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const fmtNum = (n) => (typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—');

/** Seconds as a short human duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

const fmtClock = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** Shows a JSON body indented (error-queue envelopes are JSON); anything else as it is. */
function prettyBody(body) {
  const text = String(body ?? '');
  if (!/^\s*[[{]/.test(text)) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------------------------
// Session: the token lives in sessionStorage only, so it goes when the tab closes and never
// appears in a URL (routes are hashes without it).

const KEY_TOKEN = 'ferromq.console.token';
const KEY_PROJECTS = 'ferromq.console.projects'; // {listed, entered, all, legacy}: see signIn()

const session = {
  token: () => sessionStorage.getItem(KEY_TOKEN),
  projects() {
    try {
      return { listed: [], entered: [], all: false, ...JSON.parse(sessionStorage.getItem(KEY_PROJECTS) || '{}') };
    } catch {
      return { listed: [], entered: [], all: false };
    }
  },
  /** Every project the console knows the token reaches, listed ones first. */
  knownProjects() {
    const { listed, entered } = this.projects();
    return [...new Set([...listed, ...entered])];
  },
  /** True when the user may type in a project id (the token reaches every project, or the server cannot list them). */
  canEnterProjects() {
    const p = this.projects();
    return p.all || p.legacy === true;
  },
  signIn(token, projects) {
    sessionStorage.setItem(KEY_TOKEN, token);
    sessionStorage.setItem(KEY_PROJECTS, JSON.stringify(projects));
  },
  rememberProject(project) {
    const p = this.projects();
    if (!p.listed.includes(project) && !p.entered.includes(project)) p.entered.push(project);
    sessionStorage.setItem(KEY_PROJECTS, JSON.stringify(p));
  },
  signOut() {
    sessionStorage.removeItem(KEY_TOKEN);
    sessionStorage.removeItem(KEY_PROJECTS);
  },
};

// ---------------------------------------------------------------------------------------------
// API client

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const isAbort = (e) => e && e.name === 'AbortError';

/** Calls the API; an answer that is not 2xx throws an ApiError carrying the server's `msg`. */
async function api(method, path, { body, signal, token = session.token() } = {}) {
  const headers = { Accept: 'application/json', Authorization: `OAuth ${token}` };
  const init = { method, headers, signal, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, 'The server cannot be reached. Check the connection and try again.');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const msg = data && typeof data.msg === 'string' && data.msg ? data.msg : `The server answered ${response.status}.`;
    throw new ApiError(response.status, msg);
  }
  return data || {};
}

const enc = encodeURIComponent;
const projectApi = (project) => `/3/projects/${enc(project)}`;
const queueApi = (project, queue) => `${projectApi(project)}/queues/${enc(queue)}`;

const link = {
  home: () => '#/',
  project: (project) => `#/p/${enc(project)}`,
  newQueue: (project) => `#/p/${enc(project)}/new`,
  queue: (project, queue, section = '') => `#/p/${enc(project)}/q/${enc(queue)}${section ? `/${section}` : ''}`,
};

// The stats route is an extension a server may not have yet: a 404 from the router (not
// "Queue not found") means it is missing, and the console stops asking.
let statsSupported;

async function loadStats(ctx, project, queue, minutes) {
  if (statsSupported === false) return null;
  try {
    const answer = await ctx.call('GET', `${queueApi(project, queue)}/stats?minutes=${minutes}`);
    statsSupported = true;
    return answer.stats || null;
  } catch (e) {
    if (e.status === 404 && e.message !== 'Queue not found') {
      statsSupported = false;
      return null;
    }
    throw e;
  }
}

// Queue settings seen on the list page, so a dead-letter or error queue's page can name the
// queues that send to it without asking the server for every queue again.
const infoCache = new Map();

async function loadInfo(ctx, project, queue) {
  const { queue: info } = await ctx.call('GET', queueApi(project, queue));
  infoCache.set(`${project}/${queue}`, info);
  return info;
}

/** Runs `fn` over `items`, `limit` at a time: the list page asks a few queues at once, not all. */
async function mapLimit(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const isPush = (info) => info.type === 'unicast' || info.type === 'multicast';

// ---------------------------------------------------------------------------------------------
// Notices: #status is polite (success), #alert is assertive (errors). Both are cleared on
// navigation so an old message does not describe a new page.

const statusEl = () => document.getElementById('status');
const alertEl = () => document.getElementById('alert');

function notify(text) {
  alertEl().textContent = '';
  statusEl().textContent = text;
}

function notifyError(text) {
  statusEl().textContent = '';
  alertEl().textContent = text;
}

function clearNotices() {
  statusEl().textContent = '';
  alertEl().textContent = '';
}

/** Shows an error next to a form (its .form-error) or, without one, at the top of the page. */
function showError(e, form) {
  if (isAbort(e)) return;
  if (e.status === 401) return signOutWith(e.message);
  const message = e.message || String(e);
  const slot = form && form.querySelector('.form-error');
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    slot.scrollIntoView({ block: 'nearest' });
  } else {
    notifyError(message);
  }
}

function clearFormError(form) {
  const slot = form.querySelector('.form-error');
  if (slot) {
    slot.textContent = '';
    slot.hidden = true;
  }
}

const formError = () => h('p', { class: 'form-error', role: 'alert', hidden: true });

// ---------------------------------------------------------------------------------------------
// Confirmation: a modal <dialog> (keeps focus inside, Escape cancels, focus returns after).

function confirmAction({ title, text, action }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, action);
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title), h('p', {}, text), h('div', { class: 'actions' }, cancel, ok));
    cancel.addEventListener('click', () => dialog.close('cancel'));
    ok.addEventListener('click', () => dialog.close('ok'));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus
  });
}

// ---------------------------------------------------------------------------------------------
// Sortable table: header buttons toggle the order; aria-sort says which column sorts and how.

function compareValues(a, b) {
  const missingA = a === undefined || a === null;
  const missingB = b === undefined || b === null;
  if (missingA || missingB) return missingA - missingB; // missing values last
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/**
 * columns: [{key, label, value(row), cell(row) -> node or text, numeric?, rowHeader?}]
 * sort: {key, dir: 'ascending' | 'descending'}; onSort(newSort) redraws.
 */
function sortableTable({ caption, columns, rows, sort, onSort }) {
  const column = columns.find((c) => c.key === sort.key) || columns[0];
  const sign = sort.dir === 'descending' ? -1 : 1;
  const sorted = [...rows].sort((a, b) => {
    const va = column.value(a);
    const vb = column.value(b);
    // Missing values stay last in both directions.
    if (va === undefined || va === null || vb === undefined || vb === null) return compareValues(va, vb);
    return sign * compareValues(va, vb);
  });
  const head = h('tr', {}, columns.map((c) => {
    const active = c.key === column.key;
    const nextDir = active && sort.dir === 'ascending' ? 'descending' : 'ascending';
    const button = h('button', { type: 'button', class: 'sort', 'data-sort-key': c.key,
      onclick: () => onSort({ key: c.key, dir: nextDir }) }, c.label);
    return h('th', { scope: 'col', class: c.numeric ? 'num' : null, 'aria-sort': active ? sort.dir : null }, button);
  }));
  const body = sorted.map((row) => h('tr', {}, columns.map((c) => {
    const content = c.cell ? c.cell(row) : fmtNum(c.value(row));
    return c.rowHeader ? h('th', { scope: 'row' }, content) : h('td', { class: c.numeric ? 'num' : null }, content);
  })));
  return h('table', {}, h('caption', { class: 'vh' }, caption), h('thead', {}, head), h('tbody', {}, body));
}

/** Replaces a table that is redrawn, keeping the focus on the same sort button or link. */
function replaceKeepingFocus(oldNode, newNode) {
  const focused = document.activeElement;
  const inside = focused && oldNode.contains(focused) && focused !== oldNode;
  const selector = !inside ? null
    : focused.dataset.sortKey ? `[data-sort-key="${CSS.escape(focused.dataset.sortKey)}"]`
      : focused.getAttribute('href') ? `a[href="${CSS.escape(focused.getAttribute('href'))}"]` : null;
  const refocus = inside || focused === oldNode;
  oldNode.replaceWith(newNode);
  if (!refocus) return;
  const target = selector && newNode.querySelector(selector);
  (target || (newNode.tabIndex >= 0 ? newNode : null))?.focus();
}

/** A plain (not sortable) table; the first cell of each row names it. */
function simpleTable(caption, headers, rows) {
  return h('table', {},
    h('caption', { class: 'vh' }, caption),
    h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c)))))));
}

// ---------------------------------------------------------------------------------------------
// Charts: inline SVG line charts over the last 24 hours, one point per minute.

const CHART = { width: 640, height: 200, left: 48, right: 12, top: 10, bottom: 26 };

/** A round maximum for the y axis, at least `n`, whose half (the middle grid line) is whole too. */
function niceCeil(n) {
  if (n <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 4, 6, 8, 10].map((m) => m * power).find((v) => v >= n);
}

/**
 * series: [{label, className, points: [[epochSeconds, value], ...], step?}]
 * Returns a <figure> with the SVG, a legend and a caption summing it up in words.
 */
function lineChart({ title, summary, series, from, to, emptyText }) {
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = niceCeil(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const x = (t) => left + ((t - from) / (to - from)) * plotW;
  const y = (v) => top + plotH - (v / max) * plotH;

  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': `${title}: ${summary}` },
    svg('title', {}, `${title}: ${summary}`));
  for (const v of [0, max / 2, max]) {
    chart.append(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    chart.append(svg('text', { class: 'axis', x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = from + ((to - from) * i) / 4;
    const label = i === 4 ? 'now' : fmtClock(new Date(t * 1000));
    chart.append(svg('text', { class: 'axis', x: x(t), y: height - 8, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, label));
  }
  const hasData = series.some((s) => s.points.length > 0);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([t, v], i) => {
      if (i === 0) return `M${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
      // A step chart holds the previous value until the next one (depth between samples).
      const stepUp = s.step ? `H${x(t).toFixed(1)} ` : '';
      return `${stepUp}L${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
    }).join(' ');
    chart.append(svg('path', { class: `line ${s.className}`, d }));
    // A dot on the latest value: a queue with minutes of history only is a sliver of the day.
    const [lastT, lastV] = s.points[s.points.length - 1];
    chart.append(svg('circle', { class: `dot ${s.className}`, cx: x(lastT).toFixed(1), cy: y(lastV).toFixed(1), r: 3 }));
  }
  if (!hasData) {
    chart.append(svg('text', { class: 'empty', x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, emptyText));
  }
  const legend = h('ul', { class: 'legend' }, series.map((s) =>
    h('li', {}, h('span', { class: `swatch ${s.className}`, 'aria-hidden': 'true' }), s.label)));
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, h('strong', {}, title), ` — ${summary}`), chart, legend);
}

/** Depth and throughput series from the per-minute stats (only minutes with data are sent). */
function chartData(minutes, now, currentSize) {
  const from = now - 24 * 3600;
  const kept = minutes.filter((m) => m.at >= from);
  const depth = kept.map((m) => [m.at, m.depth ?? 0]);
  if (typeof currentSize === 'number') depth.push([now, currentSize]);
  // Throughput: a minute without data had no traffic, so it is a zero, not a gap.
  const byMinute = new Map(kept.map((m) => [m.at, m]));
  const posted = [];
  const deleted = [];
  if (kept.length > 0) {
    for (let t = Math.ceil(from / 60) * 60; t <= now; t += 60) {
      const m = byMinute.get(t);
      posted.push([t, m ? m.posted ?? 0 : 0]);
      deleted.push([t, m ? m.deleted ?? 0 : 0]);
    }
  }
  return { from, depth, posted, deleted };
}

function peakOf(points) {
  return points.reduce((best, p) => (best === null || p[1] > best[1] ? p : best), null);
}

function depthSummary(points, now) {
  if (points.length === 0) return 'no data in the last 24 hours';
  const peak = peakOf(points);
  const latest = points[points.length - 1][1];
  return `now ${fmtNum(latest)} messages, peak ${fmtNum(peak[1])} at ${fmtClock(new Date(Math.min(peak[0], now) * 1000))}`;
}

function throughputSummary(posted, deleted) {
  if (posted.length === 0) return 'no data in the last 24 hours';
  const sum = (points) => points.reduce((n, p) => n + p[1], 0);
  return `${fmtNum(sum(posted))} posted and ${fmtNum(sum(deleted))} deleted in 24 hours, at most ${fmtNum(peakOf(posted)[1])} posted in a minute`;
}

// ---------------------------------------------------------------------------------------------
// Router: #/, #/p/PROJECT, #/p/PROJECT/new, #/p/PROJECT/q/QUEUE[/messages|push|settings|redrive]

const main = () => document.getElementById('main');

function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length === 0) return { page: homePage };
  if (parts[0] !== 'p' || !parts[1]) return { page: notFoundPage };
  const project = parts[1];
  if (parts.length === 2) return { page: queueListPage, params: { project } };
  if (parts.length === 3 && parts[2] === 'new') return { page: newQueuePage, params: { project } };
  if (parts[2] === 'q' && parts[3] && parts.length <= 5) {
    const section = parts[4] || '';
    const pages = { '': overviewPage, messages: messagesPage, push: pushPage, settings: settingsPage, redrive: redrivePage };
    if (section in pages) return { page: pages[section], params: { project, queue: parts[3], section } };
  }
  return { page: notFoundPage };
}

let current = null; // the page on screen: its AbortController and clean-ups

/** A page's context: calls abort and timers stop when the user moves on. */
function newContext() {
  if (current) {
    current.controller.abort();
    current.cleanups.forEach((fn) => fn());
  }
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  return {
    signal: controller.signal,
    onLeave: (fn) => cleanups.push(fn),
    call: (method, path, body) => api(method, path, { body, signal: controller.signal }),
  };
}

let firstRender = true;
let flash = null; // a notice for the next page: navigating clears the notices of the old one

async function render() {
  const ctx = newContext();
  clearNotices();
  if (flash) notify(flash);
  flash = null;
  renderTopnav();
  const route = session.token() ? parseRoute(location.hash) : { page: signInPage };
  const done = route.page(route.params || {}, ctx);
  // Pages put their heading up before their first request: move focus there so keyboard and
  // screen-reader users start on the new page (not on the first load: they start at the top).
  if (!firstRender) main().querySelector('h1')?.focus();
  firstRender = false;
  try {
    await done;
  } catch (e) {
    if (isAbort(e) || ctx.signal.aborted) return;
    if (e.status === 401) return signOutWith(e.message);
    main().querySelectorAll('.loading').forEach((el) => el.remove());
    main().append(h('p', { class: 'page-error', role: 'alert' }, e.message || String(e)));
  }
}

function navigate(hash, notice) {
  flash = notice || null;
  if (location.hash === hash) render();
  else location.hash = hash;
}

function mount(...nodes) {
  main().replaceChildren(...nodes);
}

function setTitle(...parts) {
  document.title = [...parts, 'ferromq console'].join(' — ');
}

const heading = (text) => h('h1', { tabindex: -1 }, text);

function signOutWith(message) {
  session.signOut();
  render().then(() => (message ? notifyError(message) : notify('Signed out.')));
}

/** The header's navigation: project switcher and sign-out, when signed in. */
function renderTopnav() {
  const nav = document.getElementById('topnav');
  if (!session.token()) return nav.replaceChildren();
  const route = parseRoute(location.hash);
  const currentProject = route.params && route.params.project;
  const projects = session.knownProjects();
  if (currentProject && !projects.includes(currentProject)) projects.push(currentProject);
  const items = [h('a', { href: link.home() }, 'Projects')];
  if (projects.length > 0) {
    const chooser = select([['', 'Choose…'], ...projects.map((p) => [p, p])], currentProject || '', { id: 'project-switch' });
    chooser.addEventListener('change', () => chooser.value && navigate(link.project(chooser.value)));
    items.push(h('span', { class: 'inline-field' }, h('label', { for: chooser.id }, 'Project'), chooser));
  }
  items.push(h('button', { type: 'button', class: 'secondary', onclick: () => signOutWith() }, 'Sign out'));
  nav.replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function signInPage(params, ctx) {
  setTitle('Sign in');
  const token = h('input', { type: 'password', id: 'signin-token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const project = textInput({ id: 'signin-project' });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card signin', novalidate: true },
    field('Token', token, 'Kept in this browser tab only, until it closes or you sign out.'),
    field('Project (optional)', project, 'Needed when the token reaches every project.'),
    formError(), h('div', { class: 'actions' }, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    busy(button, () => signIn(token.value.trim(), project.value.trim(), ctx)).catch((e) => {
      // A wrong token here is a message on the form, not a sign-out.
      if (isAbort(e)) return;
      const slot = form.querySelector('.form-error');
      slot.textContent = e.message;
      slot.hidden = false;
      token.focus();
    });
  });
  mount(heading('Sign in'), h('p', { class: 'lede' }, 'Sign in with an API token to see the queues of its projects.'), form);
}

async function signIn(token, project, ctx) {
  if (!token) throw new Error('Enter a token.');
  const call = (path) => api('GET', path, { token, signal: ctx.signal });
  let projects = { listed: [], entered: [], all: false };
  try {
    const answer = await call('/3/projects');
    projects.listed = Array.isArray(answer.projects) ? answer.projects : [];
    projects.all = answer.all_projects === true;
  } catch (e) {
    // A server without the projects route answers 404: the user then names the project.
    if (e.status !== 404) throw e;
    projects.legacy = true;
    if (!project) throw new Error('Enter a project: this server cannot list the projects of a token.');
  }
  if (project) {
    // Proves the token may use the project, with the server's own message when not.
    await call(`${projectApi(project)}/queues?per_page=1`);
    if (!projects.listed.includes(project)) projects.entered.push(project);
  } else if (!projects.all && projects.listed.length === 0) {
    throw new Error('This token reaches no project.');
  }
  session.signIn(token, projects);
  // A deep link opened before signing in is kept; otherwise go to the project.
  const route = parseRoute(location.hash);
  const target = route.page !== homePage ? location.hash : project ? link.project(project)
    : projects.listed.length === 1 ? link.project(projects.listed[0]) : link.home();
  navigate(target, 'Signed in.');
}

// ---------------------------------------------------------------------------------------------
// Projects

function homePage(params, ctx) {
  setTitle('Projects');
  const projects = session.knownProjects();
  const list = projects.length > 0
    ? h('ul', { class: 'projects' }, projects.map((p) => h('li', {}, h('a', { href: link.project(p) }, p))))
    : h('p', {}, 'No project yet: open one below.');
  const nodes = [heading('Projects'), list];
  if (session.canEnterProjects() || projects.length === 0) {
    const input = textInput({ id: 'open-project', required: true });
    const form = h('form', { class: 'card inline-form', novalidate: true },
      h('h2', {}, 'Open a project'), field('Project id', input), formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Open project')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const project = input.value.trim();
      if (!project) return showError(new Error('Enter a project id.'), form);
      ctx.call('GET', `${projectApi(project)}/queues?per_page=1`).then(() => {
        session.rememberProject(project);
        navigate(link.project(project));
      }, (e) => showError(e, form));
    });
    nodes.push(form);
  }
  mount(...nodes);
}

function notFoundPage() {
  setTitle('Not found');
  mount(heading('Page not found'), h('p', {}, h('a', { href: link.home() }, 'Go to the projects')));
}

// ---------------------------------------------------------------------------------------------
// Queue list

// Kept while the tab is open, so the list comes back as the user left it.
const listPrefs = { filter: '', type: '', sort: { key: 'name', dir: 'ascending' } };

function queueColumns(project) {
  return [
    { key: 'name', label: 'Name', rowHeader: true, value: (r) => r.name,
      cell: (r) => [h('a', { href: link.queue(project, r.name) }, r.name),
        r.info && r.info.managed_by ? h('span', { class: 'badge', title: `Managed by ${r.info.managed_by}` }, 'managed') : null] },
    { key: 'type', label: 'Type', value: (r) => r.info && r.info.type, cell: (r) => (r.error ? 'unavailable' : (r.info && r.info.type) || '…') },
    { key: 'size', label: 'Size', numeric: true, value: (r) => r.info && r.info.size },
    { key: 'reserved', label: 'Reserved', numeric: true, value: (r) => r.stats && r.stats.reserved },
    { key: 'age', label: 'Oldest message', numeric: true, value: (r) => r.stats && r.stats.oldest_message_age,
      cell: (r) => fmtDuration(r.stats && r.stats.oldest_message_age) },
    { key: 'posted', label: 'Posts/min', numeric: true, value: (r) => r.stats && r.stats.posted_per_minute },
    { key: 'deleted', label: 'Deletes/min', numeric: true, value: (r) => r.stats && r.stats.deleted_per_minute },
  ];
}

async function queueListPage({ project }, ctx) {
  setTitle('Queues', project);
  const filter = h('input', { type: 'search', id: 'queue-filter', autocomplete: 'off', value: listPrefs.filter });
  const typeFilter = select([['', 'All types'], ['pull', 'Pull'], ['unicast', 'Unicast'], ['multicast', 'Multicast']],
    listPrefs.type, { id: 'queue-type-filter' });
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more queues');
  const statsNote = h('p', { class: 'note', hidden: true },
    'This server does not report reserved counts, message ages or rates yet: those columns show —.');
  const count = h('p', { class: 'count', 'aria-live': 'polite' });
  let table = h('p', { class: 'loading' }, 'Loading queues…');

  mount(
    breadcrumb([[project]]),
    heading(`Queues of ${project}`),
    h('div', { class: 'toolbar' },
      field('Filter by name', filter), field('Type', typeFilter),
      h('div', { class: 'toolbar-actions' }, h('a', { class: 'button', href: link.newQueue(project) }, 'New queue'), refresh)),
    statsNote, count, table, more);

  const rows = new Map();
  let last = null;

  // Redraws at most once a frame: rows fill in one by one as their info and stats arrive.
  let drawPending = false;
  const draw = () => {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      if (ctx.signal.aborted) return;
      const needle = listPrefs.filter.toLowerCase();
      const shown = [...rows.values()].filter((r) => r.name.toLowerCase().includes(needle)
        && (!listPrefs.type || (r.info && r.info.type === listPrefs.type)));
      const next = rows.size === 0 ? h('p', {}, 'No queues yet. Post a message or create one.')
        : scrollBox(sortableTable({
          caption: `Queues of project ${project}`, columns: queueColumns(project), rows: shown, sort: listPrefs.sort,
          onSort: (sort) => { listPrefs.sort = sort; draw(); },
        }), `Queues of project ${project}`);
      replaceKeepingFocus(table, next);
      table = next;
      count.textContent = rows.size === 0 ? '' : `Showing ${shown.length} of ${rows.size} queues${more.hidden ? '' : ' loaded so far'}.`;
      statsNote.hidden = statsSupported !== false;
    });
  };

  filter.addEventListener('input', () => { listPrefs.filter = filter.value; draw(); });
  typeFilter.addEventListener('change', () => { listPrefs.type = typeFilter.value; draw(); });

  async function loadPage() {
    const previous = last ? `&previous=${enc(last)}` : '';
    const { queues = [] } = await ctx.call('GET', `${projectApi(project)}/queues?per_page=100${previous}`);
    const names = queues.map((q) => q.name);
    for (const name of names) rows.set(name, { name });
    last = names.length > 0 ? names[names.length - 1] : last;
    more.hidden = names.length < 100;
    draw();
    await mapLimit(names, 4, async (name) => {
      const row = rows.get(name);
      try {
        [row.info, row.stats] = await Promise.all([loadInfo(ctx, project, name), loadStats(ctx, project, name, 2)]);
      } catch (e) {
        if (isAbort(e) || e.status === 401) throw e;
        row.error = e.message; // deleted meanwhile, say: the row stays, marked
      }
      draw();
    });
  }

  more.addEventListener('click', () => busy(more, loadPage).catch((e) => showError(e)));
  refresh.addEventListener('click', () => busy(refresh, async () => {
    rows.clear();
    last = null;
    await loadPage();
    notify('Queue list refreshed.');
  }).catch((e) => showError(e)));
  await loadPage();
}

function breadcrumb(items) {
  // items: [[label, href?], ...]; the last one is the current page.
  return h('nav', { 'aria-label': 'Breadcrumb', class: 'breadcrumb' }, h('ol', {}, items.map(([label, href], i) =>
    h('li', {}, href && i < items.length - 1 ? h('a', { href }, label) : h('span', { 'aria-current': 'page' }, label)))));
}

// ---------------------------------------------------------------------------------------------
// Queue pages share a frame: breadcrumb, heading, the managed notice and the section tabs.

async function queueFrame({ project, queue, section }, ctx) {
  const sectionNames = { '': 'Overview', messages: 'Messages', push: 'Push', settings: 'Settings', redrive: 'Redrive' };
  setTitle(section ? `${sectionNames[section]} of ${queue}` : queue, project);
  const tabs = h('div');
  const notice = h('div');
  const body = h('div', { class: 'section-body' }, h('p', { class: 'loading' }, 'Loading…'));
  mount(breadcrumb([[project, link.project(project)], [queue]]), heading(queue), notice, tabs, body);

  const info = await loadInfo(ctx, project, queue);
  if (info.managed_by) {
    notice.replaceWith(h('p', { class: 'managed', role: 'note' },
      h('strong', {}, 'Read-only: '), `this queue is managed by the Kubernetes resource ${info.managed_by}. `,
      'Change it there; messages can still be posted, peeked and deleted here.'));
  }
  const sections = [['', 'Overview'], ['messages', 'Messages']];
  if (isPush(info) || section === 'push') sections.push(['push', 'Push']);
  if (!isPush(info) || section === 'redrive') sections.push(['redrive', 'Redrive']);
  sections.push(['settings', 'Settings']);
  tabs.replaceWith(h('nav', { class: 'tabs', 'aria-label': 'Queue sections' }, h('ul', {}, sections.map(([key, label]) =>
    h('li', {}, h('a', { href: link.queue(project, queue, key), 'aria-current': key === section ? 'page' : null }, label))))));
  body.replaceChildren();
  return { info, body };
}

// ---------------------------------------------------------------------------------------------
// Overview: facts, 24-hour charts, refreshed every few seconds while the tab is visible.

const POLL_MS = 5000;

/** Calls `fn` every `ms` while the page is open and visible, and at once when it becomes visible again. */
function poll(ctx, fn, ms = POLL_MS) {
  let running = false;
  const tick = async () => {
    if (document.hidden || running || ctx.signal.aborted) return;
    running = true;
    try {
      await fn();
    } catch (e) {
      if (!isAbort(e)) showError(e);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, ms);
  const onVisible = () => !document.hidden && tick();
  document.addEventListener('visibilitychange', onVisible);
  ctx.onLeave(() => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  });
}

function queueLink(project, name) {
  return h('a', { href: link.queue(project, name) }, name);
}

function overviewFacts(project, info, stats) {
  const push = info.push;
  return facts([
    ['Type', isPush(info) ? `${info.type} (push)` : 'pull'],
    ['Size', fmtNum(info.size)],
    ['Reserved', stats ? fmtNum(stats.reserved) : '—'],
    ['Oldest message', stats ? fmtDuration(stats.oldest_message_age) : '—'],
    ['Posts per minute', stats ? fmtNum(stats.posted_per_minute) : '—'],
    ['Deletes per minute', stats ? fmtNum(stats.deleted_per_minute) : '—'],
    ['Messages ever posted', fmtNum(info.total_messages)],
    ['Reservation timeout', fmtDuration(info.message_timeout)],
    ['Messages expire after', fmtDuration(info.message_expiration)],
    ['Subscribers', push ? fmtNum((push.subscribers || []).length) : null],
    ['Error queue', push ? (push.error_queue ? queueLink(project, push.error_queue) : 'none') : null],
    ['Dead-letter queue', info.dead_letter && info.dead_letter.queue_name
      ? [queueLink(project, info.dead_letter.queue_name), ` after ${fmtNum(info.dead_letter.max_reservations)} reservations`]
      : isPush(info) ? null : 'none'],
    ['Alerts', isPush(info) ? null : fmtNum((info.alerts || []).length)],
    ['Managed by', info.managed_by || null],
  ]);
}

async function overviewPage(params, ctx) {
  const { project, queue } = params;
  let { info, body } = await queueFrame(params, ctx);
  const minutes = new Map(); // at -> minute, merged from each poll
  let stats = await loadStats(ctx, project, queue, 1440);
  for (const m of (stats && stats.minutes) || []) minutes.set(m.at, m);

  let factsNode = h('div');
  let chartsNode = h('div');
  const updated = h('p', { class: 'updated' });
  body.append(h('h2', { class: 'vh' }, 'Summary'), factsNode, h('h2', {}, 'Last 24 hours'), updated, chartsNode);

  function draw() {
    const now = Date.now() / 1000;
    for (const at of minutes.keys()) if (at < now - 24 * 3600 - 60) minutes.delete(at);
    const data = chartData([...minutes.values()].sort((a, b) => a.at - b.at), now, stats ? stats.size : info.size);
    const emptyText = stats ? 'No activity in the last 24 hours' : 'This server does not report history yet';
    const nextFacts = overviewFacts(project, info, stats);
    const nextCharts = h('div', { class: 'charts' },
      lineChart({ title: 'Depth', summary: stats ? depthSummary(data.depth, now) : 'not reported by this server',
        series: [{ label: 'Messages in the queue', className: 's-depth', points: stats ? data.depth : [], step: true }],
        from: data.from, to: now, emptyText }),
      lineChart({ title: 'Throughput per minute', summary: stats ? throughputSummary(data.posted, data.deleted) : 'not reported by this server',
        series: [
          { label: 'Posted', className: 's-posted', points: data.posted },
          { label: 'Deleted', className: 's-deleted', points: data.deleted },
        ], from: data.from, to: now, emptyText }));
    factsNode.replaceWith(nextFacts);
    chartsNode.replaceWith(nextCharts);
    factsNode = nextFacts;
    chartsNode = nextCharts;
    updated.textContent = `Live while this page is open; updated at ${new Date().toLocaleTimeString()}.`;
  }
  draw();

  // Each poll asks for the last few minutes only and merges them into the 24 hours.
  poll(ctx, async () => {
    const [nextInfo, nextStats] = await Promise.all([loadInfo(ctx, project, queue), loadStats(ctx, project, queue, 5)]);
    info = nextInfo;
    stats = nextStats;
    for (const m of (stats && stats.minutes) || []) minutes.set(m.at, m);
    draw();
  });
}

// ---------------------------------------------------------------------------------------------
// Messages: peek, look up by id, post, delete, clear.

function bodyView(body) {
  return h('pre', { class: 'body' }, prettyBody(body));
}

/** Deletes one message after confirmation; a reserved message needs its reservation id. */
async function deleteMessage(ctx, project, queue, id) {
  const ok = await confirmAction({ title: 'Delete this message?', text: `Message ${id} will be deleted from ${queue}.`, action: 'Delete message' });
  if (!ok) return false;
  let reservationId;
  try {
    const { message } = await ctx.call('GET', `${queueApi(project, queue)}/messages/${enc(id)}`);
    reservationId = message && message.reservation_id;
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  await ctx.call('DELETE', `${queueApi(project, queue)}/messages/${enc(id)}`, reservationId ? { reservation_id: reservationId } : {});
  notify(`Deleted message ${id}.`);
  return true;
}

function messageTable(ctx, { project, queue, messages }) {
  const rows = messages.map((m) => {
    const actions = h('div', { class: 'row-actions' });
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': `Delete message ${m.id}` }, 'Delete');
    remove.addEventListener('click', () => busy(remove, async () => {
      if (await deleteMessage(ctx, project, queue, m.id)) remove.closest('tr').remove();
    }).catch((e) => showError(e)));
    actions.append(remove);
    return [h('code', {}, m.id), bodyView(m.body), fmtNum(m.reserved_count), actions];
  });
  return scrollBox(simpleTable(`Messages of ${queue}`, ['Id', 'Body', 'Times reserved', 'Actions'], rows), `Messages of ${queue}`);
}

async function messagesPage(params, ctx) {
  const { info, body } = await queueFrame(params, ctx);
  body.append(peekSection(ctx, params, info), lookupSection(ctx, params, info), postSection(ctx, params), clearSection(ctx, params));
}

function peekSection(ctx, { project, queue }, info) {
  const n = h('input', { type: 'number', id: 'peek-n', min: 1, max: 100, value: '10', inputmode: 'numeric' });
  const results = h('div', { class: 'results' });
  const button = h('button', { type: 'submit' }, 'Peek');
  const form = h('form', { class: 'inline-form', novalidate: true }, field('Number of messages', n), h('div', { class: 'actions' }, button), formError());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    busy(button, async () => {
      const { messages = [] } = await ctx.call('GET', `${queueApi(project, queue)}/messages?n=${enc(n.value.trim() || '1')}`);
      results.replaceChildren(messages.length === 0
        ? h('p', {}, 'No message is ready (reserved and delayed messages are not shown).')
        : messageTable(ctx, { project, queue, messages }));
      notify(`${messages.length} message${messages.length === 1 ? '' : 's'} shown.`);
    }).catch((e) => showError(e, form));
  });
  return h('section', { 'aria-labelledby': 'peek-h' }, h('h2', { id: 'peek-h' }, 'Peek'),
    h('p', { class: 'hint' }, 'The next messages in line, without reserving them.'), form, results);
}

function lookupSection(ctx, { project, queue }, info) {
  const id = textInput({ id: 'lookup-id', inputmode: 'numeric' });
  const result = h('div', { class: 'results' });
  const button = h('button', { type: 'submit' }, 'Look up');
  const form = h('form', { class: 'inline-form', novalidate: true }, field('Message id', id), h('div', { class: 'actions' }, button), formError());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    if (!id.value.trim()) return showError(new Error('Enter a message id.'), form);
    busy(button, async () => {
      const { message } = await ctx.call('GET', `${queueApi(project, queue)}/messages/${enc(id.value.trim())}`);
      const remove = h('button', { type: 'button', class: 'secondary' }, 'Delete this message');
      remove.addEventListener('click', () => busy(remove, async () => {
        if (await deleteMessage(ctx, project, queue, message.id)) result.replaceChildren(h('p', {}, `Message ${message.id} was deleted.`));
      }).catch((e) => showError(e, form)));
      result.replaceChildren(h('div', { class: 'card' },
        facts([
          ['Id', h('code', {}, message.id)],
          ['Times reserved', fmtNum(message.reserved_count)],
          ['Reservation', message.reservation_id ? h('code', {}, message.reservation_id) : 'not reserved'],
          ['Body', bodyView(message.body)],
        ]),
        h('div', { class: 'actions' }, remove,
          isPush(info) ? h('a', { class: 'button secondary', href: link.queue(project, queue, 'push') }, 'Push status…') : null)));
    }).catch((e) => showError(e, form));
  });
  return h('section', { 'aria-labelledby': 'lookup-h' }, h('h2', { id: 'lookup-h' }, 'Look up a message'), form, result);
}

function postSection(ctx, { project, queue }) {
  const text = h('textarea', { id: 'post-body', rows: 4, spellcheck: 'false' });
  const delay = h('input', { type: 'text', id: 'post-delay', inputmode: 'numeric', autocomplete: 'off' });
  const button = h('button', { type: 'submit' }, 'Post message');
  const form = h('form', { class: 'card', novalidate: true },
    field('Message body', text), field('Delay in seconds (optional)', delay, 'Hides the message for this long.'),
    formError(), h('div', { class: 'actions' }, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    const message = { body: text.value };
    const d = delay.value.trim();
    if (d) message.delay = /^\d+$/.test(d) ? Number(d) : d; // the API says what is wrong with it
    busy(button, async () => {
      const { ids = [] } = await ctx.call('POST', `${queueApi(project, queue)}/messages`, { messages: [message] });
      notify(`Posted message ${ids[0] || ''}.`.replace(' .', '.'));
      text.value = '';
    }).catch((e) => showError(e, form));
  });
  return h('section', { 'aria-labelledby': 'post-h' }, h('h2', { id: 'post-h' }, 'Post a test message'), form);
}

function clearSection(ctx, { project, queue }) {
  const button = h('button', { type: 'button', class: 'danger' }, 'Clear queue…');
  button.addEventListener('click', () => busy(button, async () => {
    const ok = await confirmAction({ title: `Clear ${queue}?`, action: 'Clear queue',
      text: `Every message of ${queue} is deleted, reserved and delayed ones included. This cannot be undone.` });
    if (!ok) return;
    await ctx.call('DELETE', `${queueApi(project, queue)}/messages`, {});
    notify(`Cleared ${queue}.`);
  }).catch((e) => showError(e)));
  return h('section', { 'aria-labelledby': 'clear-h' }, h('h2', { id: 'clear-h' }, 'Clear the queue'),
    h('p', {}, 'Deletes every message in the queue.'), button);
}

// ---------------------------------------------------------------------------------------------
// Push: subscribers with their counts, and a message's push status.

function subscriberRows(project, info, stats) {
  const counts = new Map(((stats && stats.subscribers) || []).map((s) => [s.name, s]));
  return ((info.push && info.push.subscribers) || []).map((s) => {
    const c = counts.get(s.name);
    return { name: s.name, url: s.url, headers: Object.keys(s.headers || {}).length,
      delivered: c ? c.delivered : undefined, accepted: c ? c.accepted : undefined, failed: c ? c.failed : undefined };
  });
}

async function pushPage(params, ctx) {
  const { project, queue } = params;
  let { info, body } = await queueFrame(params, ctx);
  if (!isPush(info)) {
    body.append(h('p', {}, `${queue} is a pull queue: it has no subscribers. `,
      h('a', { href: link.queue(project, queue, 'settings') }, 'Change its type in the settings'), ' to push its messages.'));
    return;
  }
  let stats = await loadStats(ctx, project, queue, 2);
  const sort = { key: 'name', dir: 'ascending' };
  let table = h('div');
  let settingsNode = h('div');
  const note = h('p', { class: 'note', hidden: true }, 'This server does not report delivery counts yet.');
  body.append(h('section', { 'aria-labelledby': 'subs-h' }, h('h2', { id: 'subs-h' }, 'Subscribers'), note, table, settingsNode),
    pushStatusSection(ctx, params));

  const columns = [
    { key: 'name', label: 'Name', rowHeader: true, value: (r) => r.name, cell: (r) => r.name },
    { key: 'url', label: 'URL', value: (r) => r.url, cell: (r) => h('code', { class: 'url' }, r.url) },
    { key: 'delivered', label: 'Delivered', numeric: true, value: (r) => r.delivered },
    { key: 'accepted', label: 'Accepted (202)', numeric: true, value: (r) => r.accepted },
    { key: 'failed', label: 'Failed', numeric: true, value: (r) => r.failed },
  ];
  function draw() {
    const next = scrollBox(sortableTable({ caption: `Subscribers of ${queue}`, columns, rows: subscriberRows(project, info, stats), sort,
      onSort: (s) => { Object.assign(sort, s); draw(); } }), `Subscribers of ${queue}`);
    replaceKeepingFocus(table, next);
    table = next;
    const push = info.push;
    const nextSettings = facts([
      ['Retries', fmtNum(push.retries)],
      ['Delay between retries', fmtDuration(push.retries_delay)],
      ['Backoff', push.backoff || 'fixed'],
      ['Error queue', push.error_queue ? queueLink(project, push.error_queue) : 'none'],
    ]);
    settingsNode.replaceWith(nextSettings);
    settingsNode = nextSettings;
    note.hidden = statsSupported !== false;
  }
  draw();
  poll(ctx, async () => {
    [info, stats] = await Promise.all([loadInfo(ctx, project, queue), loadStats(ctx, project, queue, 2)]);
    if (isPush(info)) draw();
  });
}

function pushStatusSection(ctx, { project, queue }) {
  const id = textInput({ id: 'push-status-id', inputmode: 'numeric' });
  const result = h('div', { class: 'results' });
  const button = h('button', { type: 'submit' }, 'Show push status');
  const form = h('form', { class: 'inline-form', novalidate: true }, field('Message id', id), h('div', { class: 'actions' }, button), formError());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    if (!id.value.trim()) return showError(new Error('Enter a message id.'), form);
    busy(button, async () => {
      const { subscribers = [] } = await ctx.call('GET', `${queueApi(project, queue)}/messages/${enc(id.value.trim())}/subscribers`);
      const rows = subscribers.map((s) => [s.name, h('code', { class: 'url' }, s.url), s.status || '—',
        s.status_code ? String(s.status_code) : '—', fmtNum(s.tries), fmtNum(s.retries_remaining),
        s.last_try_at ? new Date(s.last_try_at).toLocaleString() : '—']);
      result.replaceChildren(scrollBox(simpleTable(`Push status of message ${id.value.trim()}`,
        ['Subscriber', 'URL', 'Status', 'Status code', 'Tries', 'Retries left', 'Last try'], rows), 'Push status'));
    }).catch((e) => showError(e, form));
  });
  return h('section', { 'aria-labelledby': 'push-status-h' }, h('h2', { id: 'push-status-h' }, 'Push status of a message'),
    h('p', { class: 'hint' }, 'Finished messages stay readable for a minute after their last delivery.'), form, result);
}

// ---------------------------------------------------------------------------------------------
// Settings form, shared by "new queue" and a queue's settings. The API validates: the console
// sends what was typed and shows the API's msg, so both always say the same thing.

/** A number field's value: digits as a number, blank as absent, anything else as typed (for the API to refuse). */
function numberOrText(value) {
  const text = value.trim();
  if (text === '') return undefined;
  return /^\d+$/.test(text) ? Number(text) : text;
}

function headersText(headers) {
  return Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
}

function parseHeaders(text, label) {
  const headers = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const colon = line.indexOf(':');
    if (colon < 1) throw new Error(`${label}: write each header as "Name: value" on its own line.`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** A list of fieldsets with add and remove buttons (subscribers, alerts). */
function repeater({ legend, addLabel, items, makeRow }) {
  const rows = [];
  const list = h('div', { class: 'rows' });
  const addButton = h('button', { type: 'button', class: 'secondary' }, addLabel);
  const renumber = () => rows.forEach((row, i) => {
    row.legend.textContent = `${legend} ${i + 1}`;
    row.remove.setAttribute('aria-label', `Remove ${legend.toLowerCase()} ${i + 1}`);
  });
  const add = (item) => {
    const row = makeRow(item);
    row.legend = h('legend', {});
    row.remove = h('button', { type: 'button', class: 'secondary small' }, 'Remove');
    row.remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      renumber();
      addButton.focus(); // the removed button took the focus with it
    });
    row.el.prepend(row.legend);
    row.el.append(row.remove);
    rows.push(row);
    list.append(row.el);
    renumber();
    return row;
  };
  addButton.addEventListener('click', () => add({}).first.focus());
  items.forEach(add);
  return { el: h('div', { class: 'repeater' }, list, addButton), read: () => rows.map((r) => r.read()) };
}

function subscriberRow(sub) {
  const name = textInput({ value: sub.name || '' });
  const url = h('input', { type: 'url', autocomplete: 'off', spellcheck: 'false', value: sub.url || '', placeholder: 'https://example.com/hook' });
  const headers = h('textarea', { rows: 2, spellcheck: 'false', value: headersText(sub.headers) });
  const el = h('fieldset', { class: 'row' }, h('div', { class: 'grid' },
    field('Name', name), field('URL', url, 'http(s)://… or ironmq:///other_queue'), field('Headers', headers, 'One "Name: value" per line')));
  // Saving sends the whole list, which replaces the queue's: keep what the form does not show
  // (a subscriber's own retries and retries_delay).
  const kept = {};
  for (const key of ['retries', 'retries_delay']) if (sub[key] !== undefined && sub[key] !== null) kept[key] = sub[key];
  return { el, first: name, read: () => ({ ...kept, name: name.value.trim(), url: url.value.trim(), headers: parseHeaders(headers.value, `Headers of ${name.value.trim() || 'a subscriber'}`) }) };
}

function alertRow(alert) {
  const type = select([['fixed', 'Fixed'], ['progressive', 'Progressive']], alert.type || 'fixed');
  const direction = select([['asc', 'Growing (asc)'], ['desc', 'Shrinking (desc)']], alert.direction || 'asc');
  const trigger = textInput({ inputmode: 'numeric', value: alert.trigger ?? '' });
  const queue = textInput({ value: alert.queue || '' });
  const snooze = textInput({ inputmode: 'numeric', value: alert.snooze ?? '' });
  const el = h('fieldset', { class: 'row' }, h('div', { class: 'grid' },
    field('Alert type', type), field('Direction', direction), field('Trigger (messages)', trigger),
    field('Post to queue', queue), field('Snooze (seconds)', snooze)));
  return { el, first: type, read: () => ({ type: type.value, direction: direction.value, trigger: numberOrText(trigger.value),
    queue: queue.value.trim(), snooze: numberOrText(snooze.value) }) };
}

/**
 * The settings form. `info` is the queue's current info (absent for a new queue).
 * onSubmit(settings, {clearAlerts}) sends them.
 */
function settingsForm({ info, isNew, readOnly, onSubmit }) {
  const current = info || { type: 'pull' };
  const push = current.push || {};
  const dead = current.dead_letter || {};
  const name = textInput({ id: 'queue-name', required: true });
  const type = select([['pull', 'Pull'], ['unicast', 'Unicast (push)'], ['multicast', 'Multicast (push)']],
    current.type, { id: 'queue-type' });
  const timeout = textInput({ id: 'queue-timeout', inputmode: 'numeric', value: info ? info.message_timeout : '' });
  const expiration = textInput({ id: 'queue-expiration', inputmode: 'numeric', value: info ? info.message_expiration : '' });
  const maxSize = textInput({ id: 'queue-max-size', inputmode: 'numeric', value: current.max_message_size || '' });

  const subscribers = repeater({ legend: 'Subscriber', addLabel: 'Add subscriber', makeRow: subscriberRow,
    items: push.subscribers && push.subscribers.length ? push.subscribers : isNew ? [{}] : [] });
  const retries = textInput({ id: 'push-retries', inputmode: 'numeric', value: push.retries ?? '' });
  const retriesDelay = textInput({ id: 'push-retries-delay', inputmode: 'numeric', value: push.retries_delay ?? '' });
  const errorQueue = textInput({ id: 'push-error-queue', value: push.error_queue || '' });
  const deadQueue = textInput({ id: 'dead-letter-queue', value: dead.queue_name || '' });
  const deadMax = textInput({ id: 'dead-letter-max', inputmode: 'numeric', value: dead.max_reservations ?? '' });
  const alerts = repeater({ legend: 'Alert', addLabel: 'Add alert', makeRow: alertRow, items: current.alerts || [] });

  const pushBox = h('fieldset', { class: 'group' }, h('legend', {}, 'Push'),
    h('p', { class: 'hint' }, 'Subscribers receive each message as an HTTP POST.'),
    subscribers.el,
    h('div', { class: 'grid' },
      field('Retries', retries, '0 to 100; default 3.'),
      field('Delay between retries (seconds)', retriesDelay, 'Default 60.'),
      field('Error queue', errorQueue, 'Where undeliverable messages go; empty for none.')));
  const deadBox = h('fieldset', { class: 'group' }, h('legend', {}, 'Dead-letter queue'),
    h('div', { class: 'grid' },
      field('Dead-letter queue', deadQueue, 'Messages reserved too often move here; empty for none.'),
      field('Maximum reservations', deadMax, '1 to 1000; default 10.')));
  const alertsBox = h('fieldset', { class: 'group' }, h('legend', {}, 'Alerts'),
    h('p', { class: 'hint' }, 'When the size crosses a trigger, a message describing it is posted to another queue.'), alerts.el);
  const showForType = () => {
    const pushType = type.value !== 'pull';
    pushBox.hidden = !pushType;
    deadBox.hidden = pushType;
    alertsBox.hidden = pushType;
  };
  type.addEventListener('change', showForType);
  showForType();

  const submit = h('button', { type: 'submit' }, isNew ? 'Create queue' : 'Save settings');
  const all = h('fieldset', { class: 'plain', disabled: readOnly },
    h('legend', { class: 'vh' }, 'Queue settings'),
    isNew ? field('Queue name', name, 'Letters, digits, _ . and -, up to 128 characters.') : null,
    h('div', { class: 'grid' },
      field('Type', type),
      field('Reservation timeout (seconds)', timeout, '30 to 86400; default 60.'),
      field('Message expiration (seconds)', expiration, 'Up to 2592000; default 604800 (7 days).'),
      field('Maximum message size (bytes, optional)', maxSize, 'Below the server limit; empty for none.')),
    pushBox, deadBox, alertsBox);
  const form = h('form', { class: 'settings', novalidate: true }, all, formError(), readOnly ? null : h('div', { class: 'actions' }, submit));

  function read() {
    const settings = { type: type.value };
    const numbers = { message_timeout: timeout, message_expiration: expiration, max_message_size: maxSize };
    for (const [key, input] of Object.entries(numbers)) {
      const v = numberOrText(input.value);
      if (v !== undefined) settings[key] = v;
    }
    if (!isNew && settings.max_message_size === undefined && current.max_message_size) settings.max_message_size = 0;
    const clear = { alerts: false };
    if (type.value !== 'pull') {
      settings.push = { subscribers: subscribers.read(), error_queue: errorQueue.value.trim() };
      const r = numberOrText(retries.value);
      const d = numberOrText(retriesDelay.value);
      if (r !== undefined) settings.push.retries = r;
      if (d !== undefined) settings.push.retries_delay = d;
    } else {
      const deadName = deadQueue.value.trim();
      if (deadName) {
        settings.dead_letter = { queue_name: deadName };
        const max = numberOrText(deadMax.value);
        if (max !== undefined) settings.dead_letter.max_reservations = max;
      } else if (dead.queue_name) {
        settings.dead_letter = { queue_name: '' }; // an empty name removes it
      }
      const list = alerts.read();
      if (list.length > 0) settings.alerts = list;
      // A PUT without alerts leaves them: removing the last one needs the alerts route.
      else clear.alerts = !isNew && (current.alerts || []).length > 0;
    }
    return { settings, clear };
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    busy(submit, async () => {
      const { settings, clear } = read();
      await onSubmit(settings, clear, name.value.trim());
    }).catch((e) => showError(e, form));
  });
  return form;
}

async function newQueuePage({ project }, ctx) {
  setTitle('New queue', project);
  const form = settingsForm({ isNew: true, onSubmit: async (settings, clear, name) => {
    if (!name) throw new Error('Enter a name for the queue.');
    // PUT would change an existing queue: say so instead of changing it silently.
    const exists = await ctx.call('GET', queueApi(project, name)).then(() => true, (e) => {
      if (e.status === 404) return false;
      throw e;
    });
    if (exists) throw new Error(`A queue named ${name} already exists.`);
    await ctx.call('PUT', queueApi(project, name), { queue: settings });
    navigate(link.queue(project, name), `Created queue ${name}.`);
  } });
  mount(breadcrumb([[project, link.project(project)], ['New queue']]), heading('New queue'), form);
}

async function settingsPage(params, ctx) {
  const { project, queue } = params;
  const { info, body } = await queueFrame(params, ctx);
  const readOnly = Boolean(info.managed_by);
  const form = settingsForm({ info, readOnly, onSubmit: async (settings, clear) => {
    await ctx.call('PUT', queueApi(project, queue), { queue: settings });
    if (clear.alerts) await ctx.call('PUT', `${queueApi(project, queue)}/alerts`, { alerts: [] });
    navigate(link.queue(project, queue, 'settings'), 'Settings saved.');
  } });
  body.append(h('h2', {}, 'Settings'), form);
  if (!readOnly) body.append(deleteQueueSection(ctx, params));
}

function deleteQueueSection(ctx, { project, queue }) {
  const button = h('button', { type: 'button', class: 'danger' }, 'Delete queue…');
  button.addEventListener('click', () => busy(button, async () => {
    const ok = await confirmAction({ title: `Delete ${queue}?`, action: 'Delete queue',
      text: `The queue ${queue}, its settings and all its messages are deleted. This cannot be undone.` });
    if (!ok) return;
    await ctx.call('DELETE', queueApi(project, queue));
    infoCache.delete(`${project}/${queue}`);
    navigate(link.project(project), `Deleted queue ${queue}.`);
  }).catch((e) => showError(e)));
  return h('section', { class: 'danger-zone', 'aria-labelledby': 'delete-h' }, h('h2', { id: 'delete-h' }, 'Delete the queue'), button);
}

// ---------------------------------------------------------------------------------------------
// Redrive: a dead-letter or error queue's messages back to the queue they came from.

function sourcesOf(project, queue) {
  const sources = [];
  for (const [key, info] of infoCache) {
    if (!key.startsWith(`${project}/`)) continue;
    if (info.dead_letter && info.dead_letter.queue_name === queue) sources.push([info.name, 'dead letters']);
    if (info.push && info.push.error_queue === queue) sources.push([info.name, 'push errors']);
  }
  return sources;
}

function redriveFacts(redrive) {
  return facts([
    ['State', redrive.state],
    ['Moved', fmtNum(redrive.moved)],
    ['To', redrive.to],
    ['At most', redrive.max ? fmtNum(redrive.max) : 'every waiting message'],
    ['Rate', redrive.rate ? `${fmtNum(redrive.rate)} per second` : 'as fast as possible'],
    ['Started', redrive.created_at ? new Date(redrive.created_at).toLocaleString() : null],
  ]);
}

async function redrivePage(params, ctx) {
  const { project, queue } = params;
  const { info, body } = await queueFrame(params, ctx);
  const sources = sourcesOf(project, queue);
  const statusBox = h('div', { 'aria-live': 'polite' });
  const to = textInput({ id: 'redrive-to', list: 'redrive-sources' });
  const max = textInput({ id: 'redrive-max', inputmode: 'numeric' });
  const rate = textInput({ id: 'redrive-rate', inputmode: 'numeric' });
  const start = h('button', { type: 'submit' }, 'Start redrive');
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Cancel redrive');
  const form = h('form', { class: 'card', novalidate: true },
    h('div', { class: 'grid' },
      field('Target queue (optional)', to, 'By default the queue whose dead-letter or error queue this is.'),
      field('At most (messages, optional)', max, 'By default every message waiting now.'),
      field('Rate (messages per second, optional)', rate)),
    h('datalist', { id: 'redrive-sources' }, sources.map(([name]) => h('option', { value: name }))),
    formError(), h('div', { class: 'actions' }, start, cancel));

  let watching = false;
  async function refresh() {
    let redrive = null;
    try {
      ({ redrive } = await ctx.call('GET', `${queueApi(project, queue)}/redrive`));
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    statusBox.replaceChildren(redrive ? redriveFacts(redrive) : h('p', {}, 'No redrive of this queue yet.'));
    const running = Boolean(redrive && redrive.state === 'running');
    cancel.hidden = !running;
    if (running && !watching) {
      watching = true; // follow it until it ends
      poll(ctx, async () => refresh(), 2000);
    }
    return redrive;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearFormError(form);
    const request = {};
    if (to.value.trim()) request.to = to.value.trim();
    if (numberOrText(max.value) !== undefined) request.max = numberOrText(max.value);
    if (numberOrText(rate.value) !== undefined) request.rate = numberOrText(rate.value);
    busy(start, async () => {
      await ctx.call('POST', `${queueApi(project, queue)}/redrive`, request);
      const redrive = await refresh();
      notify(redrive && redrive.state === 'done' ? `Redrive done: ${fmtNum(redrive.moved)} moved to ${redrive.to}.` : 'Redrive started.');
    }).catch((e) => showError(e, form));
  });
  cancel.addEventListener('click', () => busy(cancel, async () => {
    await ctx.call('DELETE', `${queueApi(project, queue)}/redrive`);
    await refresh();
    notify('Redrive cancelled.');
  }).catch((e) => showError(e, form)));

  const intro = sources.length > 0
    ? h('p', {}, `Messages come here from: `, sources.map(([name, why], i) => [i ? ', ' : '', queueLink(project, name), ` (${why})`]), '.')
    : h('p', {}, 'Redrive moves the messages waiting in a dead-letter or error queue back to the queue they came from.');
  body.append(
    h('section', { 'aria-labelledby': 'redrive-h' }, h('h2', { id: 'redrive-h' }, 'Redrive'), intro, statusBox, form),
    h('section', { 'aria-labelledby': 'waiting-h' }, h('h2', { id: 'waiting-h' }, 'Waiting messages'), waitingMessages(ctx, params, info)));
  await refresh();
}

/** The first messages waiting in a dead-letter or error queue, loaded on request. */
function waitingMessages(ctx, { project, queue }, info) {
  const box = h('div', { class: 'results' });
  const button = h('button', { type: 'button', class: 'secondary' }, 'Show the first 20 messages');
  button.addEventListener('click', () => busy(button, async () => {
    const { messages = [] } = await ctx.call('GET', `${queueApi(project, queue)}/messages?n=20`);
    box.replaceChildren(messages.length === 0 ? h('p', {}, 'No message is waiting.')
      : messageTable(ctx, { project, queue, messages }));
  }).catch((e) => showError(e)));
  return h('div', {}, button, box);
}

// ---------------------------------------------------------------------------------------------
// Start

window.addEventListener('hashchange', render);
document.addEventListener('DOMContentLoaded', () => {
  // The skip link must not change the hash: that would be read as a route.
  document.getElementById('skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    main().focus();
  });
  render();
});
if (document.readyState !== 'loading') document.dispatchEvent(new Event('DOMContentLoaded'));
