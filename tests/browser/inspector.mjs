#!/usr/bin/env node
// Drives the snapkeep browser inspector (www/) in headless Chromium and checks
// what it shows against expected values (computed with the CLI).
//
//   node tests/browser/inspector.mjs CONFIG.json
//
// CONFIG: {chromium, screenshots, targets: [{name, url, folder?}], snapshots,
// diff, plan, file, errors, big, narrow, empty}. A target may carry its own `snapshots`,
// `diff`, `plan` or `file`, which then replace the top-level ones for it.
// `narrow` opens one repository at {width, height} and checks that the names
// it lists (snapshots, indices, files) show whole in every view; it writes
// the command the plan's copy button copies to `command_out`. `empty` opens
// a repository without snapshots and checks its statistics. `encrypted`
// lists encrypted repositories to unlock with their password (runEncrypted).
// Prints one line per check; exits 1 at the first failure, saying what differed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OPEN_TIMEOUT = 120_000;
const STEP_TIMEOUT = 60_000;

let browser = null;

function ok(message) {
  console.log(`ok   ${message}`);
}

async function fail(message) {
  console.log(`FAIL ${message}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

async function check(cond, message, detail) {
  if (cond) ok(message);
  else await fail(detail ? `${message}: ${detail}` : message);
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

const sel = (testid) => `[data-testid="${testid}"]`;
const attr = (v) => String(v).replace(/["\\]/g, '\\$&');

async function text(page, testid) {
  return ((await page.locator(sel(testid)).first().textContent()) || '').trim();
}

/** Waits until the page is ready (a repository open) or shows an error. */
async function waitOpen(page, what) {
  try {
    await page.waitForFunction(
      () => document.body.dataset.ready === '1' || (document.querySelector('[data-testid="error"]')?.textContent || '').trim() !== '',
      null,
      { timeout: OPEN_TIMEOUT },
    );
  } catch {
    await fail(`${what}: the repository did not open within ${OPEN_TIMEOUT / 1000} s (status: "${await text(page, 'status')}")`);
  }
  const ready = await page.evaluate(() => document.body.dataset.ready === '1');
  if (!ready) await fail(`${what}: opening failed: ${await text(page, 'error')}`);
}

/** Waits for `fn` in the page, or fails with `what` and the page's error line. */
async function waitFor(page, what, fn, arg, timeout = STEP_TIMEOUT) {
  try {
    await page.waitForFunction(fn, arg, { timeout });
  } catch {
    const err = await text(page, 'error');
    await fail(`${what} (timed out${err ? `; the page says: ${err}` : ''})`);
  }
}

async function screenshot(page, dir, target, view) {
  const file = path.join(dir, `${target}-${view}.png`);
  await page.screenshot({ path: file, fullPage: true });
  ok(`${target}: screenshot ${file}`);
}

async function tab(page, name) {
  await page.click(sel(`tab-${name}`));
  await waitFor(page, `tab ${name} did not open`, (n) => document.querySelector(`[data-testid="tab-${n}"]`)?.getAttribute('aria-selected') === 'true', name);
}

/** Every row of a virtualised list, scrolling its viewport top to bottom. */
async function collectRows(page, viewportId, rowId) {
  return page.evaluate(
    async ({ viewportId, rowId }) => {
      const vp = document.querySelector(`[data-testid="${viewportId}"]`);
      const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const seen = new Map();
      vp.scrollTop = 0;
      for (let guard = 0; guard < 100000; guard++) {
        await frame();
        for (const r of vp.querySelectorAll(`[data-testid="${rowId}"]`)) seen.set(r.dataset.index, { ...r.dataset });
        if (vp.scrollTop + vp.clientHeight >= vp.scrollHeight - 1) break;
        vp.scrollTop += Math.max(1, vp.clientHeight - 40);
      }
      vp.scrollTop = 0;
      return [...seen.values()];
    },
    { viewportId, rowId },
  );
}

/** Scrolls the tree until the row named `name` is rendered; false if none. */
async function revealTreeRow(page, name) {
  return page.evaluate(async (name) => {
    const vp = document.querySelector('[data-testid="tree-viewport"]');
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    vp.scrollTop = 0;
    for (let guard = 0; guard < 100000; guard++) {
      await frame();
      const row = [...vp.querySelectorAll('[data-testid="tree-row"]')].find((r) => r.dataset.name === name);
      if (row) {
        row.scrollIntoView({ block: 'nearest' });
        await frame();
        return true;
      }
      if (vp.scrollTop + vp.clientHeight >= vp.scrollHeight - 1) return false;
      vp.scrollTop += Math.max(1, vp.clientHeight - 40);
    }
    return false;
  }, name);
}

async function newPage(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`     (page error: ${e.message})`));
  // What the page's Content-Security-Policy blocked (checked by checkCsp).
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push({ directive: e.effectiveDirective || e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
    });
  });
  return page;
}

/** Nothing the page itself does is blocked by its CSP (Playwright's own eval aside). */
async function checkCsp(page, t) {
  const v = await page.evaluate(() => window.__csp.filter((x) => x.blocked !== 'eval'));
  await check(v.length === 0, `${t}: the Content-Security-Policy blocked nothing`, JSON.stringify(v.slice(0, 3)));
}

/** The address bar never keeps a token (?token= or #token=). */
async function checkNoToken(page, t) {
  const url = page.url();
  await check(!/[?&#]token=/.test(url), `${t}: the address holds no token`, url.replace(/token=[^&#]*/g, 'token=…'));
}

// ---- The views ----

async function checkSnapshots(page, t, expected) {
  await waitFor(page, `${t}: the snapshot table has no rows`, () => document.querySelectorAll('[data-testid="snapshot-row"]').length > 0 || document.querySelector('[data-testid="snapshot-total"]')?.dataset.value === '0');
  // Gather every page (Next until it is disabled).
  const rows = [];
  for (let p = 0; p < 1000; p++) {
    rows.push(
      ...(await page.$$eval('[data-testid="snapshot-row"]', (trs) =>
        trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('[data-field]')].map((c) => [c.dataset.field, c.dataset.value]))),
      )),
    );
    if (await page.locator(sel('page-next')).isDisabled()) break;
    const first = await page.$eval('[data-testid="snapshot-row"]', (tr) => tr.dataset.snapshot);
    await page.click(sel('page-next'));
    await waitFor(page, `${t}: the next page did not load`, (f) => document.querySelector('[data-testid="snapshot-row"]')?.dataset.snapshot !== f, first);
  }
  const byName = new Map(rows.map((r) => [r.snapshot, r]));
  const want = expected.map((s) => s.snapshot).sort();
  const got = [...byName.keys()].sort();
  await check(JSON.stringify(got) === JSON.stringify(want), `${t}: the table lists snapshots ${want.join(', ')}`, `it lists ${got.join(', ')}`);
  for (const s of expected) {
    const r = byName.get(s.snapshot);
    if (s.state !== undefined) await check(r.state === s.state, `${t}: ${s.snapshot} state ${s.state}`, `table says ${r.state}`);
    if (s.size_in_bytes !== undefined) {
      await check(Number(r.size) === Number(s.size_in_bytes), `${t}: ${s.snapshot} logical size ${s.size_in_bytes}`, `table says ${r.size}`);
    }
  }
  if (expected.length === 0) return;
  // Sorting from the keyboard: Name header, Enter, twice gives both orders.
  await page.focus('[data-testid="snapshot-table"] button[data-sort="name"]');
  await page.keyboard.press('Enter');
  await waitFor(page, `${t}: sorting by name did not apply`, () => document.querySelector('button[data-sort="name"]')?.closest('th')?.getAttribute('aria-sort') === 'ascending');
  const asc = await page.$$eval('[data-testid="snapshot-row"]', (trs) => trs.map((tr) => tr.dataset.snapshot));
  const sorted = [...asc].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  await check(JSON.stringify(asc) === JSON.stringify(sorted), `${t}: Enter on the Name header sorts by name (aria-sort=ascending)`, asc.join(', '));
  await page.focus('[data-testid="snapshot-table"] button[data-sort="name"]');
  await page.keyboard.press('Enter');
  await waitFor(page, `${t}: sorting by name descending did not apply`, () => document.querySelector('button[data-sort="name"]')?.closest('th')?.getAttribute('aria-sort') === 'descending');
  ok(`${t}: Enter again sorts by name descending`);
  // The filter box narrows by name.
  const one = expected[0].snapshot;
  await page.fill(sel('filter-input'), one);
  await waitFor(page, `${t}: filtering by "${one}" did not narrow the table`, (n) => [...document.querySelectorAll('[data-testid="snapshot-row"]')].every((r) => r.dataset.snapshot.includes(n)), one);
  await page.fill(sel('filter-input'), '');
  await waitFor(page, `${t}: clearing the filter did not restore the table`, (n) => document.querySelectorAll('[data-testid="snapshot-row"]').length >= Math.min(n, 25), expected.length);
  ok(`${t}: the filter box narrows the table by name`);
}

async function checkChart(page, t, expected) {
  await tab(page, 'chart');
  await waitFor(page, `${t}: the chart did not draw`, () => document.querySelector('[data-testid="chart"] svg') && document.querySelector('[data-testid="stats"] dd'));
  const info = await page.$eval(sel('chart'), (c) => ({
    points: Number(c.dataset.points),
    title: c.querySelector('svg > title')?.textContent || '',
    desc: c.querySelector('svg > desc')?.textContent || '',
    labelled: c.querySelector('svg')?.getAttribute('aria-labelledby') || '',
    lines: c.querySelectorAll('polyline').length,
  }));
  await check(info.points === expected.length, `${t}: the chart plots ${expected.length} snapshots`, `it plots ${info.points}`);
  await check(info.title && info.desc && info.labelled && info.lines >= 2, `${t}: the chart has two lines, a title and a description`, JSON.stringify(info));

  // Time ticks fall on round times, read differently, and the newest
  // snapshot is named on the chart.
  const ticks = await page.$$eval(`${sel('chart')} text.tick`, (es) => es.map((e) => ({ ms: Number(e.dataset.ms), label: e.textContent })));
  const t0 = Math.min(...expected.map((s) => s.start_time_in_millis));
  const t1 = Math.max(...expected.map((s) => s.start_time_in_millis));
  if (t1 - t0 >= 10000) {
    await check(ticks.length >= 2 && ticks.every((k) => k.ms % 1000 === 0), `${t}: time ticks fall on whole seconds or rounder`, JSON.stringify(ticks));
  }
  await check(new Set(ticks.map((k) => k.label)).size === ticks.length, `${t}: no two time ticks read the same`, JSON.stringify(ticks));
  const named = await page.$eval(sel('chart'), (c) => c.querySelector('text.point-label')?.textContent || '');
  if (expected.length) {
    const newest = expected.filter((s) => s.start_time_in_millis === t1).map((s) => s.snapshot);
    await check(newest.some((n) => named.startsWith(`${n}: `)), `${t}: the newest point is labelled with its snapshot (${newest.join(', ')})`, named);
  }
  const ratio = await page.$$eval(`${sel('stats')} dd`, (es) => es.map((e) => e.textContent).join(' | '));
  await check(!/0\.00×/.test(ratio), `${t}: the statistics never show a 0.00× ratio`, ratio);
}

async function checkDetail(page, t, expected) {
  await tab(page, 'snapshots');
  const s = expected[expected.length - 1];
  await page.fill(sel('filter-input'), s.snapshot);
  const btn = page.locator(`[data-testid="snapshot-row"][data-snapshot="${attr(s.snapshot)}"] button`).first();
  await btn.waitFor({ timeout: STEP_TIMEOUT });
  await btn.click();
  await waitFor(page, `${t}: the detail of ${s.snapshot} did not show`, (n) => document.querySelector('[data-testid="detail"]')?.dataset.snapshot === n && !document.querySelector('[data-testid="detail"]').hasAttribute('aria-busy'), s.snapshot);
  const d = await page.$eval(sel('detail'), (e) => ({
    state: e.querySelector('[data-field="state"]')?.textContent,
    indices: e.querySelectorAll('[data-testid="detail-indices"] tbody tr').length,
  }));
  if (s.state) await check(d.state === s.state, `${t}: the detail of ${s.snapshot} says ${s.state}`, `it says ${d.state}`);
  await check(d.indices > 0, `${t}: the detail lists ${d.indices} indices with files and bytes`);
  await tab(page, 'snapshots');
  await page.fill(sel('filter-input'), '');
  await tab(page, 'detail');
}

async function checkTree(page, t, file) {
  await tab(page, 'tree');
  await page.selectOption(sel('tree-snapshot'), file.snapshot);
  await waitFor(page, `${t}: index ${file.index} is not offered for ${file.snapshot}`, (i) => [...document.querySelector('[data-testid="tree-index"]').options].some((o) => o.value === i), file.index);
  await page.selectOption(sel('tree-index'), file.index);
  const at = async (p) =>
    waitFor(
      page,
      `${t}: the tree did not show ${file.index}/${p}`,
      ({ s, i, p }) => {
        const e = document.querySelector('[data-testid="tree"]');
        return e.dataset.snapshot === s && e.dataset.index === i && e.dataset.path === p && !e.hasAttribute('aria-busy');
      },
      { s: file.snapshot, i: file.index, p },
    );
  await at('');
  const parts = file.path.split('/');
  for (let k = 0; k < parts.length - 1; k++) {
    const found = await revealTreeRow(page, parts[k]);
    await check(found, `${t}: folder ${parts.slice(0, k + 1).join('/')} is listed`);
    await page.click(`[data-testid="tree-row"][data-name="${attr(parts[k])}"] button`);
    await at(parts.slice(0, k + 1).join('/'));
  }
  const crumbs = await page.$$eval(`${sel('breadcrumbs')} li`, (lis) => lis.map((l) => l.textContent));
  await check(crumbs.length === parts.length, `${t}: breadcrumbs show ${crumbs.join(' / ')}`);
  const name = parts[parts.length - 1];
  await check(await revealTreeRow(page, name), `${t}: file ${file.path} is listed`);
  const row = `[data-testid="tree-row"][data-name="${attr(name)}"]`;
  const listed = Number(await page.getAttribute(row, 'data-size'));
  if (file.size !== undefined) await check(listed === file.size, `${t}: the tree lists ${name} with ${file.size} bytes`, `it lists ${listed}`);
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: STEP_TIMEOUT }),
    page.click(`${row} [data-testid="download"]`),
  ]);
  const saved = fs.readFileSync(await download.path());
  await waitFor(page, `${t}: the tree did not record the download`, (f) => document.querySelector('[data-testid="tree"]').dataset.file === f, `${file.index}/${file.path}`);
  const rec = await page.$eval(sel('tree'), (e) => ({ sha256: e.dataset.sha256, size: Number(e.dataset.size) }));
  await check(download.suggestedFilename() === name, `${t}: the download is named ${name}`, download.suggestedFilename());
  if (file.sha256) {
    await check(rec.sha256 === file.sha256, `${t}: data-sha256 of ${file.path} is ${file.sha256}`, `it is ${rec.sha256}`);
    await check(sha256(saved) === file.sha256, `${t}: the downloaded bytes have SHA-256 ${file.sha256}`, `they have ${sha256(saved)}`);
  }
  if (file.size !== undefined) {
    await check(rec.size === file.size && saved.length === file.size, `${t}: the download has ${file.size} bytes`, `data-size ${rec.size}, file ${saved.length}`);
  }
}

async function checkDiff(page, t, diff) {
  await tab(page, 'diff');
  await page.selectOption(sel('diff-from'), diff.from);
  await page.selectOption(sel('diff-to'), diff.to);
  await page.click(sel('diff-run'));
  await waitFor(page, `${t}: the diff of ${diff.from} and ${diff.to} did not show`, ({ f, to }) => {
    const l = document.querySelector('[data-testid="diff-list"]');
    return l.dataset.from === f && l.dataset.to === to && l.dataset.count !== undefined && !l.hasAttribute('aria-busy');
  }, { f: diff.from, to: diff.to });
  const rows = await collectRows(page, 'diff-viewport', 'diff-row');
  const got = rows.map((r) => `${r.change} ${r.path}`).sort();
  const want = diff.changes.map((c) => `${c.change} ${c.path}`).sort();
  const missing = want.filter((w) => !got.includes(w));
  const extra = got.filter((g) => !want.includes(g));
  await check(
    missing.length === 0 && extra.length === 0 && got.length === want.length,
    `${t}: the diff ${diff.from} → ${diff.to} lists the ${want.length} expected changes`,
    `missing [${missing.slice(0, 5).join('; ')}] extra [${extra.slice(0, 5).join('; ')}] (${got.length} rows)`,
  );
}

async function checkPlan(page, t, plan) {
  await tab(page, 'plan');
  await page.selectOption(sel('plan-snapshot'), plan.snapshot);
  await page.fill(sel('plan-indices'), plan.indices ?? '*');
  await page.fill(sel('plan-rename-pattern'), plan.rename_pattern ?? '');
  await page.fill(sel('plan-rename-replacement'), plan.rename_replacement ?? '');
  await page.setChecked(sel('plan-global'), !!plan.include_global_state);
  await page.evaluate(() => delete document.querySelector('[data-testid="plan-summary"]').dataset.snapshot);
  await page.click(sel('plan-run'));
  await waitFor(page, `${t}: the restore plan did not show`, (s) => {
    const e = document.querySelector('[data-testid="plan-summary"]');
    return e.dataset.snapshot === s && !e.hasAttribute('aria-busy') && e.querySelector('[data-field="files"]');
  }, plan.snapshot);
  const values = await page.$$eval(`${sel('plan-summary')} [data-field]`, (es) => Object.fromEntries(es.map((e) => [e.dataset.field, e.dataset.value])));
  for (const key of ['bytes_to_fetch', 'files', 'bytes', 'requests', 'conflicts']) {
    if (plan[key] === undefined) continue;
    await check(Number(values[key]) === Number(plan[key]), `${t}: the plan's ${key} is ${plan[key]}`, `it is ${values[key]}`);
  }
  for (const key of ['files', 'bytes', 'bytes_to_fetch', 'requests', 'conflicts']) {
    if (values[key] === undefined || values[key] === '') await fail(`${t}: the plan summary has no ${key}`);
  }
  ok(`${t}: the plan summary shows files ${values.files}, bytes ${values.bytes}, to fetch ${values.bytes_to_fetch}, requests ${values.requests}, conflicts ${values.conflicts}`);

  // The same restore as a CLI command, with the options asked for.
  const command = await text(page, 'plan-command');
  const wanted = ['snapkeep restore ', ` ${plan.snapshot} `, '--target TARGET'];
  if (plan.indices && plan.indices !== '*') wanted.push('--indices ');
  if (plan.rename_pattern) wanted.push('--rename-pattern ', '--rename-replacement ');
  if (plan.include_global_state) wanted.push('--include-global-state');
  for (const w of wanted) await check(command.includes(w), `${t}: the plan's CLI command has "${w}"`, command);
  await check(await page.locator(sel('plan-copy')).isVisible(), `${t}: the plan has a "Copy as CLI command" button`);
  ok(`${t}: the plan reads as ${command}`);
}

/** An error per target, for its screenshot: a wrong token, or a folder that is not a repository. */
async function checkTargetError(page, t, target, shots) {
  await tab(page, 'snapshots');
  if (target.folder) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'not-a-repo-'));
    fs.writeFileSync(path.join(dir, 'readme.txt'), 'not a repository\n');
    await page.setInputFiles(sel('folder-input'), dir);
    await waitFor(page, `${t}: picking a folder that is not a repository shows no error`, () => (document.querySelector('[data-testid="error"]')?.textContent || '').trim() !== '');
    const msg = await text(page, 'error');
    await check(/no snapkeep repository/i.test(msg), `${t}: a folder that is not a repository says so: "${msg}"`);
    fs.rmSync(dir, { recursive: true, force: true });
  } else {
    // A wrong token through the form; a server that checks no token opens
    // the repository anyway, and then a missing repository makes the error.
    await page.evaluate(() => {
      document.querySelector('[data-testid="status"]').textContent = '';
    });
    await page.fill(sel('repo-token'), 'certainly-not-the-token');
    await page.click(sel('open-button'));
    await waitFor(page, `${t}: opening with a wrong token neither failed nor opened`, () => {
      const err = (document.querySelector('[data-testid="error"]')?.textContent || '').trim();
      const status = document.querySelector('[data-testid="status"]')?.textContent || '';
      return err !== '' || (document.body.dataset.ready === '1' && status.startsWith('Opened'));
    });
    let msg = await text(page, 'error');
    if (msg) {
      await check(/token|403|401|forbidden|unauthori/i.test(msg), `${t}: a wrong token is reported: "${msg}"`);
    } else {
      console.log(`     (${t}: the server accepted a wrong token, so it checks none; opening a missing repository instead)`);
      const url = await page.inputValue(sel('repo-url'));
      await page.fill(sel('repo-token'), '');
      await page.fill(sel('repo-url'), `${url.replace(/\/+$/, '')}-no-such-repository`);
      await page.click(sel('open-button'));
      await waitFor(page, `${t}: a missing repository shows no error`, () => (document.querySelector('[data-testid="error"]')?.textContent || '').trim() !== '');
      msg = await text(page, 'error');
      await check(/no snapkeep repository/i.test(msg), `${t}: a missing repository says so: "${msg}"`);
    }
  }
  await screenshot(page, shots, t, 'error');
}

async function runTarget(target, cfg) {
  const t = target.name;
  const pick = (k) => target[k] ?? cfg[k];
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
  const page = await newPage(context);
  const started = Date.now();
  await page.goto(target.url);
  if (target.folder) {
    await page.setInputFiles(sel('folder-input'), target.folder);
  }
  await waitOpen(page, t);
  ok(`${t}: opened ${target.folder || target.url} in ${Date.now() - started} ms`);
  await checkNoToken(page, t);
  const a11y = await page.evaluate(() => ({
    skip: document.querySelector('.skip')?.getAttribute('href'),
    inTable: document.querySelectorAll('[role=table] p').length,
  }));
  await check(a11y.skip === '#views' && a11y.inTable === 0, `${t}: the skip link leads to the views, and no <p> sits in a role=table`, JSON.stringify(a11y));
  const snapshots = pick('snapshots');
  if (snapshots) await checkSnapshots(page, t, snapshots);
  await screenshot(page, cfg.screenshots, t, 'snapshots');
  await checkChart(page, t, snapshots || []);
  await screenshot(page, cfg.screenshots, t, 'chart');
  if (snapshots && snapshots.length) {
    await checkDetail(page, t, snapshots);
    await screenshot(page, cfg.screenshots, t, 'detail');
  }
  const file = pick('file');
  if (file) {
    await checkTree(page, t, file);
    await screenshot(page, cfg.screenshots, t, 'tree');
  }
  const diff = pick('diff');
  if (diff) {
    await checkDiff(page, t, diff);
    await screenshot(page, cfg.screenshots, t, 'diff');
  }
  const plan = pick('plan');
  if (plan) {
    await checkPlan(page, t, plan);
    await screenshot(page, cfg.screenshots, t, 'plan');
  }
  await checkRefresh(page, t, snapshots);
  await checkCsp(page, t);
  await checkTargetError(page, t, target, cfg.screenshots);
  await context.close();
}

/** Refresh reads the repository again and reloads the view shown. */
async function checkRefresh(page, t, expected) {
  await tab(page, 'snapshots');
  await page.evaluate(() => {
    document.querySelector('[data-testid="status"]').textContent = '';
  });
  await page.click(sel('refresh'));
  await waitFor(page, `${t}: Refresh did not finish`, () => /^Refreshed /.test(document.querySelector('[data-testid="status"]')?.textContent || ''));
  if (expected) {
    await waitFor(page, `${t}: after Refresh the table does not list ${expected.length} snapshots`, (n) => document.querySelector('[data-testid="snapshot-total"]')?.dataset.value === String(n), expected.length);
  }
  ok(`${t}: Refresh reads the repository again (${await text(page, 'status')})`);
}

async function runError(entry, index, cfg) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  let page = await newPage(context);
  let url = entry.url;
  try {
    await page.goto(url, { timeout: 30_000 });
  } catch (e) {
    // The page itself cannot load from an unreachable origin: load the app
    // from the first target's origin with the same address and query.
    const origin = cfg.targets.length ? new URL(cfg.targets[0].url).origin : null;
    if (!origin) await fail(`error ${index}: ${url} did not load (${e.message.split('\n')[0]})`);
    const u = new URL(url);
    url = `${origin}${u.pathname}${u.search}`;
    console.log(`     (${entry.url} did not load; loading the app from ${url} instead)`);
    await page.close();
    page = await newPage(context);
    await page.goto(url);
  }
  await waitFor(page, `error ${index}: ${url} showed no error`, () => (document.querySelector('[data-testid="error"]')?.textContent || '').trim() !== '', null, OPEN_TIMEOUT);
  const msg = await text(page, 'error');
  await check(msg.toLowerCase().includes(entry.contains.toLowerCase()), `error ${index}: ${url} says "${msg}"`, `expected it to contain "${entry.contains}"`);
  await screenshot(page, cfg.screenshots, 'errors', String(index));
  await context.close();
}

async function runBig(big, cfg) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await newPage(context);
  await page.addInitScript(() => {
    window.__longtasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  const started = Date.now();
  await page.goto(big.url);
  await waitOpen(page, 'big');
  console.log(`     big: table ready in ${Date.now() - started} ms`);
  const total = await page.getAttribute(sel('snapshot-total'), 'data-value');
  await check(Number(total) === big.snapshots, `big: the table's total is ${big.snapshots}`, `it is ${total} ("${await text(page, 'snapshot-total')}")`);
  const rows = await page.locator(sel('snapshot-row')).count();
  await check(rows > 0 && rows <= 250, `big: one page of ${rows} rows is rendered, not all ${big.snapshots}`);
  await screenshot(page, cfg.screenshots, 'big', 'snapshots');
  if (big.tree) {
    const tr = big.tree;
    const mark = await page.evaluate(() => performance.now());
    const treeStarted = Date.now();
    await tab(page, 'tree');
    await page.selectOption(sel('tree-snapshot'), tr.snapshot);
    await waitFor(page, `big: index ${tr.index} is not offered`, (i) => [...document.querySelector('[data-testid="tree-index"]').options].some((o) => o.value === i), tr.index);
    await page.selectOption(sel('tree-index'), tr.index);
    await waitFor(
      page,
      `big: the tree did not show ${tr.entries} entries`,
      ({ i, n }) => {
        const e = document.querySelector('[data-testid="tree"]');
        return e.dataset.index === i && e.dataset.path === '' && document.querySelector('[data-testid="tree-count"]').dataset.value === String(n);
      },
      { i: tr.index, n: tr.entries },
      OPEN_TIMEOUT,
    );
    console.log(`     big: ${tr.entries} entries listed in ${Date.now() - treeStarted} ms`);
    const countText = await text(page, 'tree-count');
    const formatted = tr.entries.toLocaleString('en-US');
    await check(countText.includes(formatted) || countText.includes(String(tr.entries)), `big: the tree shows the entry count: "${countText}"`);
    const rendered = await page.locator(`${sel('tree-viewport')} ${sel('tree-row')}`).count();
    await check(rendered < 500, `big: only ${rendered} rows are in the DOM`);
    // Scroll to the bottom: the last entries render.
    const last = await page.evaluate(async () => {
      const vp = document.querySelector('[data-testid="tree-viewport"]');
      vp.scrollTop = vp.scrollHeight;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const rows = [...vp.querySelectorAll('[data-testid="tree-row"]')].map((r) => ({ i: Number(r.dataset.index), name: r.dataset.name }));
      rows.sort((a, b) => a.i - b.i);
      return rows.slice(-3);
    });
    await check(last.length && last[last.length - 1].i === tr.entries - 1, `big: scrolled to the bottom, entry ${tr.entries} (${last.length ? last[last.length - 1].name : '?'}) is rendered`);
    const longest = await page.evaluate((m) => window.__longtasks.filter((x) => x.start >= m).reduce((a, x) => Math.max(a, x.duration), 0), mark);
    console.log(`     big: longest main-thread task while opening the folder: ${Math.round(longest)} ms`);
    await check(longest <= 200, `big: no main-thread task over 200 ms while opening the ${tr.entries}-entry folder`, `one took ${Math.round(longest)} ms`);
    // Cross-check the last names with the core's own listing.
    const core = await page.evaluate(async ({ s, i }) => {
      const v = await window.snapkeepInspector.request('treeView', s, i, '');
      return v.names.split('\0').slice(-3);
    }, { s: tr.snapshot, i: tr.index });
    await check(JSON.stringify(core) === JSON.stringify(last.map((r) => r.name)), `big: the last rows are ${core.join(', ')}`, `rendered ${last.map((r) => r.name).join(', ')}`);
    await screenshot(page, cfg.screenshots, 'big', 'tree');
  }
  await context.close();
}


// ---- A narrow screen ----

/**
 * Whether each element holding one of `names` shows it whole: the innermost
 * element whose text holds the name is visible, nothing of it is cut by an
 * ellipsis or hidden by an ancestor that clips (or scrolls) sideways, it
 * lies within the viewport, and it stays inside its row. Returns the
 * problems found and how many elements were checked.
 */
async function namesWhole(page, names) {
  return page.evaluate((names) => {
    const problems = [];
    let checked = 0;
    const vw = document.documentElement.clientWidth;
    const inner = (name) => {
      const found = [];
      const walk = (e) => {
        if (!(e.textContent || '').includes(name)) return;
        const kids = [...e.children].filter((c) => (c.textContent || '').includes(name));
        if (kids.length === 0) found.push(e);
        else kids.forEach(walk);
      };
      walk(document.body);
      return found;
    };
    // A select shows its chosen name whole (it wraps in its box).
    for (const e of document.querySelectorAll('select')) {
      const chosen = e.selectedOptions[0]?.textContent || '';
      if (!names.some((n) => chosen.includes(n)) || !e.checkVisibility()) continue;
      checked++;
      const r = e.getBoundingClientRect();
      // A native select cuts what does not fit on one line, without saying
      // so in scrollWidth: a name wider than the box must take more lines.
      const cs = getComputedStyle(e);
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const room = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 16;
      const lines = Math.ceil(ctx.measureText(chosen).width / room);
      const line = parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.2;
      const tall = e.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
      if (tall < lines * line * 0.9 || e.scrollWidth > e.clientWidth + 1 || r.left < -1 || r.right > vw + 1) {
        problems.push(`select#${e.id} cuts "${chosen.slice(0, 24)}…" (${lines} lines of ${Math.round(line)} px needed, ${Math.round(tall)} px tall)`);
      }
    }
    for (const name of names) {
      for (const e of inner(name)) {
        if (e.closest('title, desc, option, select, script, [hidden], .visually-hidden, details:not([open]) > :not(summary)')) continue;
        if (!e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
        checked++;
        const what = `${e.tagName.toLowerCase()}${e.dataset.testid ? `[${e.dataset.testid}]` : ''} "${name.slice(0, 24)}…"`;
        const r = e.getBoundingClientRect();
        if (r.left < -1 || r.right > vw + 1) problems.push(`${what} lies outside the viewport (${Math.round(r.left)}..${Math.round(r.right)} of ${vw})`);
        const cs = getComputedStyle(e);
        if (!(e instanceof SVGElement) && cs.display !== 'inline' && e.scrollWidth > e.clientWidth + 1) {
          problems.push(`${what} is clipped: scrollWidth ${e.scrollWidth} > clientWidth ${e.clientWidth}`);
        }
        for (let a = e; a && a !== document.documentElement; a = a.parentElement) {
          const s = getComputedStyle(a);
          if (s.textOverflow === 'ellipsis' && s.overflowX !== 'visible' && s.whiteSpace === 'nowrap') {
            problems.push(`${what}: ${a.tagName.toLowerCase()}.${a.className} cuts it with an ellipsis`);
          }
          if (a !== e && s.overflowX !== 'visible') {
            const ar = a.getBoundingClientRect();
            if (r.left < ar.left - 1 || r.right > ar.right + 1) problems.push(`${what} sticks out of ${a.tagName.toLowerCase()}.${a.className}, which clips it`);
            if (a.scrollWidth > a.clientWidth + 1 && a.tagName !== 'svg') problems.push(`${what}: ${a.tagName.toLowerCase()}.${a.className} scrolls sideways (${a.scrollWidth} > ${a.clientWidth})`);
          }
          if (a instanceof SVGSVGElement) {
            const ar = a.getBoundingClientRect();
            if (r.left < ar.left - 1 || r.right > ar.right + 1 || r.top < ar.top - 1) problems.push(`${what} sticks out of the chart`);
          }
        }
        const row = e.closest('[role=row], tr');
        if (row && row !== e) {
          const rr = row.getBoundingClientRect();
          if (r.top < rr.top - 1 || r.bottom > rr.bottom + 1) problems.push(`${what} overflows its row (${Math.round(r.top)}..${Math.round(r.bottom)} in ${Math.round(rr.top)}..${Math.round(rr.bottom)})`);
        }
      }
    }
    return { problems, checked };
  }, names);
}

async function checkNarrowView(page, n, view, names, atLeast) {
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  const wide = await page.evaluate((w) => [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > w + 1 || e.getBoundingClientRect().left + e.scrollWidth > w + 1)
    .slice(0, 12)
    .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className} ends at ${Math.round(e.getBoundingClientRect().right)}, scrolls to ${Math.round(e.getBoundingClientRect().left + e.scrollWidth)}`), n.width);
  await check(width <= n.width, `narrow ${view}: the page does not scroll sideways (${width} px wide)`, `scrollWidth ${width} > ${n.width}: ${wide.join('; ')}`);
  const { problems, checked } = await namesWhole(page, names);
  await check(problems.length === 0, `narrow ${view}: ${checked} name elements show their names whole`, problems.slice(0, 6).join('; '));
  await check(checked >= atLeast, `narrow ${view}: at least ${atLeast} names are shown`, `only ${checked}`);
  await screenshot(page, n.screenshots, 'narrow', view);
}

async function runNarrow(n, cfg) {
  n.screenshots = cfg.screenshots;
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: n.width, height: n.height } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(n.url).origin });
  const page = await newPage(context);
  await page.goto(n.url);
  await waitOpen(page, 'narrow');
  const all = [...n.snapshots, ...n.indices, ...n.files];

  // The snapshot table, as cards.
  await waitFor(page, 'narrow: the snapshot table has no rows', (k) => document.querySelectorAll('[data-testid="snapshot-row"]').length === k, n.snapshots.length);
  const listed = await page.$$eval('[data-testid="snapshot-row"] [data-field="snapshot"]', (es) => es.map((e) => e.textContent));
  await check(JSON.stringify([...listed].sort()) === JSON.stringify([...n.snapshots].sort()), 'narrow: the table lists each snapshot by its full name', listed.join(', '));
  await checkNarrowView(page, n, 'snapshots', all, n.snapshots.length);

  // The chart: drawn at the screen's width, ticks apart, the newest named whole.
  await tab(page, 'chart');
  await waitFor(page, 'narrow: the chart did not draw', () => document.querySelector('[data-testid="chart"] svg') && document.querySelector('[data-testid="stats"] dd'));
  const chart = await page.$eval(sel('chart'), (c) => {
    const svg = c.querySelector('svg');
    const sr = svg.getBoundingClientRect();
    const ticks = [...c.querySelectorAll('text.tick')].map((t) => {
      const r = t.getBoundingClientRect();
      return { label: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom, size: parseFloat(getComputedStyle(t).fontSize) * (sr.width / svg.viewBox.baseVal.width) };
    });
    return { width: sr.width, left: sr.left, right: sr.right, ticks, named: c.querySelector('text.point-label')?.textContent || '' };
  });
  await check(chart.right <= n.width && chart.left >= 0, `narrow: the chart fits the screen (${Math.round(chart.width)} px wide)`, JSON.stringify(chart));
  await check(chart.ticks.length >= 1, `narrow: the chart has ${chart.ticks.length} time ticks`, JSON.stringify(chart.ticks));
  await check(chart.ticks.every((k) => k.size >= 11), 'narrow: tick labels are drawn at 11 px or more', JSON.stringify(chart.ticks.map((k) => k.size)));
  const sorted = [...chart.ticks].sort((a, b) => a.left - b.left);
  const overlaps = sorted.filter((k, i) => i > 0 && k.left < sorted[i - 1].right);
  await check(overlaps.length === 0, `narrow: no two tick labels overlap (${sorted.map((k) => k.label).join(' | ')})`, JSON.stringify(sorted));
  await check(chart.ticks.every((k) => k.left >= chart.left - 1 && k.right <= chart.right + 1), 'narrow: every tick label lies inside the chart', JSON.stringify(sorted));
  const newest = n.snapshots[n.snapshots.length - 1];
  await check(chart.named.startsWith(`${newest}: `), `narrow: the newest point is labelled with its whole name`, chart.named);
  await checkNarrowView(page, n, 'chart', [newest], 1);

  // The detail of the newest snapshot: its name and its indices' names.
  await tab(page, 'snapshots');
  await page.click(`[data-testid="snapshot-row"][data-snapshot="${attr(newest)}"] button`);
  await waitFor(page, 'narrow: the detail did not show', (s) => document.querySelector('[data-testid="detail"]')?.dataset.snapshot === s && !document.querySelector('[data-testid="detail"]').hasAttribute('aria-busy'), newest);
  await checkNarrowView(page, n, 'detail', all, 1 + n.indices.length);

  // The files: breadcrumbs and rows.
  const f = n.file;
  await tab(page, 'tree');
  await page.selectOption(sel('tree-snapshot'), f.snapshot);
  await waitFor(page, `narrow: index ${f.index} is not offered`, (i) => [...document.querySelector('[data-testid="tree-index"]').options].some((o) => o.value === i), f.index);
  await page.selectOption(sel('tree-index'), f.index);
  const parts = f.path.split('/');
  const folder = parts.slice(0, -1).join('/');
  await waitFor(page, 'narrow: the index root did not show', (i) => document.querySelector('[data-testid="tree"]').dataset.index === i && document.querySelector('[data-testid="tree"]').dataset.path === '', f.index);
  if (folder) {
    await page.click(`[data-testid="tree-row"][data-name="${attr(parts[0])}"] button`);
    await waitFor(page, `narrow: ${folder} did not open`, (p) => document.querySelector('[data-testid="tree"]').dataset.path === p && !document.querySelector('[data-testid="tree"]').hasAttribute('aria-busy'), folder);
  }
  await checkNarrowView(page, n, 'tree', all, parts.length + 1);
  const row = `[data-testid="tree-row"][data-name="${attr(parts[parts.length - 1])}"]`;
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_TIMEOUT }), page.click(`${row} [data-testid="download"]`)]);
  const saved = fs.readFileSync(await download.path());
  await check(sha256(saved) === f.sha256 && download.suggestedFilename() === parts[parts.length - 1], 'narrow: the download button of the long-named file gives it whole, under its name', download.suggestedFilename());

  // Compare: the changed paths, whole.
  await tab(page, 'diff');
  await page.selectOption(sel('diff-from'), n.snapshots[0]);
  await page.selectOption(sel('diff-to'), newest);
  await page.click(sel('diff-run'));
  await waitFor(page, 'narrow: the diff did not show', () => {
    const l = document.querySelector('[data-testid="diff-list"]');
    return l.dataset.count !== undefined && !l.hasAttribute('aria-busy');
  });
  await checkNarrowView(page, n, 'diff', all, 1);

  // The restore plan, and its command through the clipboard.
  const p = n.plan;
  await tab(page, 'plan');
  await page.selectOption(sel('plan-snapshot'), p.snapshot);
  await page.fill(sel('plan-indices'), p.indices);
  await page.fill(sel('plan-rename-pattern'), p.rename_pattern);
  await page.fill(sel('plan-rename-replacement'), p.rename_replacement);
  await page.click(sel('plan-run'));
  await waitFor(page, 'narrow: the restore plan did not show', (s) => {
    const e = document.querySelector('[data-testid="plan-summary"]');
    return e.dataset.snapshot === s && !e.hasAttribute('aria-busy') && e.querySelector('[data-testid="plan-copy"]');
  }, p.snapshot);
  await checkNarrowView(page, n, 'plan', all, 2);
  const copy = page.locator(sel('plan-copy'));
  const box = await copy.boundingBox();
  await check(box && box.x >= 0 && box.x + box.width <= n.width, 'narrow: the copy button lies on the screen', JSON.stringify(box));
  await page.evaluate(() => navigator.clipboard.writeText(''));
  await copy.click();
  await waitFor(page, 'narrow: the copy button put nothing on the clipboard', () => navigator.clipboard.readText().then((t) => t.length > 0));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  await check(copied === (await text(page, 'plan-command')), 'narrow: the copy button copies the command shown', copied);
  fs.writeFileSync(n.command_out, copied);
  ok(`narrow: copied "${copied}" (run by the test through the CLI)`);
  await checkCsp(page, 'narrow');
  await context.close();
}

/** A repository without snapshots: its statistics never read 0.00×. */
async function runEmpty(e, cfg) {
  const context = await browser.newContext({ viewport: { width: e.width || 1366, height: 900 } });
  const page = await newPage(context);
  await page.goto(e.url);
  await waitOpen(page, 'empty');
  await tab(page, 'chart');
  await waitFor(page, 'empty: the statistics did not show', () => document.querySelector('[data-testid="stats"] dd'));
  const shown = await page.$eval('#panel-chart', (p) => p.innerText);
  await check(!shown.includes('0.00×') && !/NaN|Infinity/.test(shown), 'empty: the chart view shows no 0.00× (nor NaN)', shown);
  await check(/Dedup ratio\s*—/.test(shown), 'empty: the dedup ratio reads "—"', shown);
  await check(shown.includes('No snapshots yet'), 'empty: the chart says there is nothing to chart', shown);
  await screenshot(page, cfg.screenshots, 'empty', 'chart');
  await context.close();
}

/**
 * An encrypted repository: the page asks for its password in the page,
 * refuses a wrong one and asks again, then opens it with the right one and
 * decrypts in the page; the password is in no request the page makes.
 * `enc`: {name, url, folder?, password, snapshots?, file}.
 */
async function runEncrypted(enc, cfg) {
  const t = enc.name;
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
  const page = await newPage(context);
  const sent = [];
  page.on('request', (r) => sent.push(`${r.url()} ${JSON.stringify(r.headers())} ${r.postData() || ''}`));
  context.on('request', (r) => sent.push(`${r.url()} ${JSON.stringify(r.headers())} ${r.postData() || ''}`));
  await page.goto(enc.url);
  if (enc.folder) await page.setInputFiles(sel('folder-input'), enc.folder);
  const asked = () => !document.querySelector('[data-testid="unlock-form"]').hidden;
  await waitFor(page, `${t}: the page did not ask for the password`, asked, null, OPEN_TIMEOUT);
  const why = await text(page, 'unlock-why');
  await check(/encrypted/i.test(why), `${t}: the page says the repository is encrypted: "${why}"`);
  await check((await text(page, 'error')) === '', `${t}: asking for the password is no error`, await text(page, 'error'));
  await screenshot(page, cfg.screenshots, t, 'password');

  await page.fill(sel('repo-password'), `${enc.password}-wrong`);
  await page.click(sel('unlock-button'));
  await waitFor(page, `${t}: a wrong password shows no error`, () => /wrong password/i.test(document.querySelector('[data-testid="error"]')?.textContent || ''), null, OPEN_TIMEOUT);
  ok(`${t}: a wrong password says so: "${await text(page, 'error')}"`);
  await check(await page.evaluate(asked), `${t}: after a wrong password the page asks again`);
  await check((await page.inputValue(sel('repo-password'))) === '', `${t}: the wrong password is cleared from the field`);

  const started = Date.now();
  await page.fill(sel('repo-password'), enc.password);
  await page.click(sel('unlock-button'));
  await waitOpen(page, t);
  ok(`${t}: unlocked and opened in ${Date.now() - started} ms`);
  await check(!(await page.evaluate(asked)), `${t}: the password form is gone once open`);
  if (enc.snapshots) await checkSnapshots(page, t, enc.snapshots);
  await checkTree(page, t, enc.file);
  await screenshot(page, cfg.screenshots, t, 'tree');
  await checkCsp(page, t);
  const leaked = sent.filter((r) => r.includes(enc.password));
  await check(sent.length > 0 && leaked.length === 0, `${t}: the password is in none of the ${sent.length} requests the page made`, leaked.slice(0, 2).join('; '));
  await context.close();
}

async function main() {
  const configPath = process.argv[2];
  if (!configPath) {
    console.error('usage: node tests/browser/inspector.mjs CONFIG.json');
    process.exit(2);
  }
  const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  cfg.targets = cfg.targets || [];
  cfg.screenshots = path.resolve(cfg.screenshots || path.join(os.tmpdir(), 'snapkeep-inspector-screenshots'));
  fs.mkdirSync(cfg.screenshots, { recursive: true });
  browser = await chromium.launch({ executablePath: cfg.chromium || '/usr/bin/chromium', args: ARGS });
  ok(`Chromium ${browser.version()} started`);
  for (const target of cfg.targets) await runTarget(target, cfg);
  for (const [i, entry] of (cfg.errors || []).entries()) await runError(entry, i + 1, cfg);
  for (const enc of cfg.encrypted || []) await runEncrypted(enc, cfg);
  if (cfg.narrow) await runNarrow(cfg.narrow, cfg);
  if (cfg.empty) await runEmpty(cfg.empty, cfg);
  if (cfg.big) await runBig(cfg.big, cfg);
  else console.log('     big: not configured, skipped');
  await browser.close();
  console.log('all inspector checks passed');
}

main().catch(async (e) => {
  await fail(`unexpected error: ${e.stack || e.message}`);
});
