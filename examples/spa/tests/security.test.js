// What a browser lets scripts do with the refresh cookie: the app's own
// scripts cannot read it, and a page on another site cannot spend it.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import {
  browser,
  createVerifiedAccount,
  eventually,
  graphql,
  logIn,
  metric,
  openApp,
  screenshot,
  stack,
  stackAndBrowserPerFile,
} from './stack.js';

const COOKIE = '__Host-gatehouse-refresh';
const REFRESH_BODY = JSON.stringify({ query: 'mutation { refreshSession { accessToken } }' });
const SESSIONS = 'query { me { sessions { id lastUsedAt current } } }';
const LOGIN_LIMIT = 3;
// Attempts a client with no device cookie still gets, from its address, on an
// account past LOGIN_LIMIT (strangers cannot lock the owner out).
const LOCKED_PER_IP = 2;

let attacker; // a page server on 127.0.0.1: another site than localhost

// Few login attempts per account, so the limit shows within one test.
stackAndBrowserPerFile({
  env: { AUTH_LOGIN_LIMIT_PER_ACCOUNT: String(LOGIN_LIMIT), AUTH_LOGIN_LIMIT_LOCKED_PER_IP: String(LOCKED_PER_IP) },
});

before(async () => {
  attacker = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<!doctype html><title>Win a prize</title><h1>Nothing to see here</h1>');
  });
  await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve()));
});

/** Signs a new account in; returns its context, page and current access token. */
async function signedInPage(tag) {
  const account = await createVerifiedAccount(stack, tag);
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  const login = page.waitForResponse((response) => response.request().postData()?.includes('mutation Login'));
  await logIn(page, account.username, account.password);
  const { data } = await (await login).json();
  return { account, context, page, accessToken: data.login.accessToken };
}

test('the refresh cookie is HttpOnly, Secure, SameSite=Strict and invisible to page scripts', { timeout: 60_000 }, async () => {
  const { account, context, page } = await signedInPage('cookie');

  const cookies = await context.cookies(stack.graphqlUrl);
  const refresh = cookies.find((cookie) => cookie.name === COOKIE);
  assert.ok(refresh, `no ${COOKIE} cookie among ${cookies.map((c) => c.name)}`);
  assert.equal(refresh.httpOnly, true);
  assert.equal(refresh.secure, true);
  assert.equal(refresh.sameSite, 'Strict');
  assert.equal(refresh.path, '/');
  assert.equal(refresh.domain, 'localhost', 'a host-only cookie, as __Host- requires');

  const visible = await page.evaluate(() => document.cookie);
  assert.ok(!visible.includes(COOKIE) && !visible.includes(refresh.value), `document.cookie shows it: ${visible}`);

  // Logging in with COOKIE never puts the refresh token in the body.
  const body = await page.evaluate(
    async ({ url, login, password }) => {
      const response = await fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation ($l: String!, $p: String!) { login(login: $l, password: $p, refreshTokenIn: COOKIE) { accessToken refreshToken } }',
          variables: { l: login, p: password },
        }),
      });
      return response.json();
    },
    { url: stack.graphqlUrl, login: account.username, password: account.password },
  );
  assert.ok(body.data.login.accessToken);
  assert.equal(body.data.login.refreshToken, null);
  await context.close();
});

test('a page on another site cannot spend the refresh cookie', { timeout: 60_000 }, async (t) => {
  const { context, page, accessToken } = await signedInPage('victim');
  const before = await graphql(stack, SESSIONS, {}, accessToken);
  const [session] = before.data.me.sessions;
  const authCallsBefore = await metric(stack, 'gateway_subgraph_requests_total', 'subgraph="auth"');
  const csrfRefusalsBefore = await metric(stack, 'gateway_csrf_refused_total');

  const evil = await context.newPage();
  await evil.goto(`http://127.0.0.1:${attacker.address().port}/`);
  const seen = [];
  evil.on('request', (request) => seen.push(request));
  const outcome = await evil.evaluate(
    async ({ url, body }) => {
      const results = {};
      // 1. A credentialed JSON request needs a CORS preflight, which the
      //    gateway does not grant to this origin: the POST is never sent.
      try {
        const response = await fetch(url, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json' },
          body,
        });
        results.cors = `read: ${await response.text()}`;
      } catch (error) {
        results.cors = `blocked: ${error.name}`;
      }
      // 2. A "simple" request goes out without a preflight, but its answer is
      //    opaque, and the gateway refuses to act on a text/plain body.
      const response = await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body });
      results.simple = { type: response.type, status: response.status, text: await response.text() };
      // 3. A GET (what an <img> or a link sends) meets the CSRF rule.
      const query = encodeURIComponent('mutation { refreshSession { accessToken } }');
      const get = await fetch(`${url}?query=${query}`, { mode: 'no-cors', credentials: 'include' });
      results.get = { type: get.type, status: get.status, text: await get.text() };
      return results;
    },
    { url: stack.graphqlUrl, body: REFRESH_BODY },
  );
  await screenshot(t, evil, '20-other-site');

  // The attacker got nothing.
  assert.equal(outcome.cors, 'blocked: TypeError');
  assert.deepEqual(outcome.simple, { type: 'opaque', status: 0, text: '' });
  assert.deepEqual(outcome.get, { type: 'opaque', status: 0, text: '' });

  // The simple POST did reach the gateway, without the SameSite=Strict
  // cookie, and the gateway refused it.
  const simple = seen.find((request) => request.method() === 'POST' && request.headers()['content-type'] === 'text/plain');
  assert.ok(simple, 'the text/plain POST was sent');
  const headers = await simple.allHeaders();
  assert.ok(!(headers.cookie ?? '').includes(COOKIE), 'the browser sent the cookie cross-site');
  const answer = await simple.response();
  assert.ok([400, 415].includes(answer.status()), `the gateway answered the text/plain POST with ${answer.status()}`);
  const get = seen.find((request) => request.method() === 'GET' && request.url().startsWith(stack.graphqlUrl));
  assert.ok(get, 'the GET was sent');
  assert.equal((await get.response()).status(), 400);
  assert.ok((await metric(stack, 'gateway_csrf_refused_total')) > csrfRefusalsBefore, 'the CSRF rule refused the GET');

  // Server side: nothing reached the auth service, the session is unchanged
  // (not rotated, not revoked) and still refreshes for the app itself.
  assert.equal(await metric(stack, 'gateway_subgraph_requests_total', 'subgraph="auth"'), authCallsBefore);
  const afterAttack = await graphql(stack, SESSIONS, {}, accessToken);
  assert.deepEqual(afterAttack.data.me.sessions, [session]);
  assert.equal(await page.evaluate(() => window.gatehouse.refresh().then(() => 'ok', (e) => e.code)), 'ok');
  await context.close();
});

test('even with the cookie attached, a simple-content-type POST is refused', { timeout: 60_000 }, async () => {
  // What SameSite cannot stop (a sibling subdomain, an old browser): a
  // text/plain POST that carries the cookie. The gateway refuses it anyway.
  const { context, accessToken } = await signedInPage('csrf');
  const cookie = (await context.cookies(stack.graphqlUrl)).find((c) => c.name === COOKIE);
  const [session] = (await graphql(stack, SESSIONS, {}, accessToken)).data.me.sessions;
  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded']) {
    const response = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': contentType, cookie: `${COOKIE}=${cookie.value}`, origin: 'http://127.0.0.1:9' },
      body: REFRESH_BODY,
    });
    const text = await response.text();
    assert.ok(response.status >= 400, `${contentType}: HTTP ${response.status} ${text}`);
    assert.ok(!text.includes('accessToken'), `${contentType}: ${text}`);
    assert.equal(response.headers.get('set-cookie'), null, `${contentType} rotated the cookie`);
  }
  const [after] = (await graphql(stack, SESSIONS, {}, accessToken)).data.me.sessions;
  assert.deepEqual(after, session, 'the session was not used');
  await context.close();
});

test('too many login attempts are refused with RATE_LIMITED, shown as such', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'limited');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  const attempt = async (password, code) => {
    const answered = page.waitForResponse((response) => response.request().postData()?.includes('mutation Login'));
    await page.locator('#login-form [name="login"]').fill(account.username);
    await page.locator('#login-form [name="password"]').fill(password);
    await page.locator('#login-form button[type="submit"]').click();
    const { errors } = await (await answered).json();
    assert.equal(errors?.[0]?.extensions?.code, code);
    await eventually(`the alert to show ${code}`, async () => (await page.locator('#alert:not([hidden]) #alert-code').textContent()) === code, { timeoutMs: 5_000 });
  };
  // The account's own limit, then the few more a new device gets from its
  // address once the account is past it.
  for (let i = 0; i < LOGIN_LIMIT + LOCKED_PER_IP; i++) await attempt('wrong password', 'INVALID_CREDENTIALS');
  // Past both even the right password is refused, and the app says why.
  await attempt(account.password, 'RATE_LIMITED');
  assert.match(await page.locator('#alert-message').textContent(), /Too many attempts/);
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
  await screenshot(t, page, '21-rate-limited');
  await context.close();
});
