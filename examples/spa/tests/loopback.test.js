// The app opened at http://127.0.0.1:PORT rather than the banner's
// http://localhost:PORT. The refresh cookie is host-only (`__Host-`) and
// SameSite=Strict, so such a page must talk to the gateway on 127.0.0.1 too:
// /config.json names the gateway on the host the page was opened with, and
// the gateway's CORS allowlist holds the app's origin on every loopback name.

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';

import { browser, logIn, newAccount, openApp, screenshot, signUpThroughForms, stack, stackAndBrowserPerFile } from './stack.js';

const COOKIE = '__Host-gatehouse-refresh';

stackAndBrowserPerFile();

const portOf = (url) => new URL(url).port;
const onHost = (url, host) => {
  const moved = new URL(url);
  moved.hostname = host;
  return moved.href.replace(/\/$/, '');
};

/** A GET with a chosen Host header, which fetch cannot set. */
function getWithHost(url, host) {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('/config.json names the gateway on the host the page was opened with', async () => {
  const [app, gateway] = [portOf(stack.appUrl), portOf(stack.gatewayUrl)];
  for (const [host, expected] of [
    [`localhost:${app}`, `http://localhost:${gateway}`],
    [`127.0.0.1:${app}`, `http://127.0.0.1:${gateway}`],
    [`[::1]:${app}`, `http://[::1]:${gateway}`],
    [`LocalHost:${app}`, `http://localhost:${gateway}`],
    // Any other name gets the banner's gateway (the dev gateway allows only loopback origins).
    [`app.example.test:${app}`, `http://localhost:${gateway}`],
  ]) {
    const answer = await getWithHost(`${stack.appUrl}/config.json`, host);
    assert.equal(answer.status, 200, host);
    assert.equal(JSON.parse(answer.body).graphqlUrl, `${expected}/graphql`, `Host: ${host}`);
    // The page's Content-Security-Policy lets it reach exactly that gateway,
    // over HTTP and WebSocket.
    const policy = answer.headers['content-security-policy'];
    const socket = expected.replace('http://', 'ws://');
    assert.ok(policy.includes(`connect-src 'self' ${expected} ${socket};`), `Host: ${host}: ${policy}`);
  }
});

test('the gateway allows the app on localhost, 127.0.0.1 and [::1], and no other origin', async () => {
  const app = portOf(stack.appUrl);
  const preflight = (origin) =>
    fetch(stack.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
  for (const host of ['localhost', '127.0.0.1', '[::1]']) {
    const origin = `http://${host}:${app}`;
    const response = await preflight(origin);
    assert.equal(response.headers.get('access-control-allow-origin'), origin, origin);
    assert.equal(response.headers.get('access-control-allow-credentials'), 'true', origin);
  }
  for (const origin of [`http://127.0.0.1:${Number(app) === 65535 ? 1 : Number(app) + 1}`, `http://app.example.test:${app}`]) {
    assert.equal((await preflight(origin)).headers.get('access-control-allow-origin'), null, origin);
  }
});

test('sign up, verify, log in, reload and log out with the app opened at 127.0.0.1', { timeout: 90_000 }, async (t) => {
  const account = newAccount('loopback');
  const appUrl = onHost(stack.appUrl, '127.0.0.1');
  const graphqlUrl = onHost(stack.graphqlUrl, '127.0.0.1');
  const context = await browser.newContext();
  const hosts = new Set();
  context.on('request', (request) => hosts.add(new URL(request.url()).host));
  const page = await openApp(context, stack, { url: `${appUrl}/` });

  // The app reached the gateway (restore ran), on 127.0.0.1.
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
  assert.equal(await page.locator('#alert').isHidden(), true, `the app shows: ${await page.locator('#alert').textContent()}`);
  const config = await page.evaluate(async () => (await fetch('/config.json')).json());
  assert.equal(config.graphqlUrl, graphqlUrl);

  // Sign up and verify through the forms.
  await signUpThroughForms(page, stack, account);

  // Log in: the profile comes from both subgraphs, and the refresh cookie is
  // stored for 127.0.0.1 (host-only, so it would never reach localhost).
  await logIn(page, account.username, account.password);
  assert.equal(await page.locator('[data-field="username"]').textContent(), account.username);
  assert.equal(await page.locator('[data-field="displayName"]').textContent(), account.displayName);
  const cookie = (await context.cookies(graphqlUrl)).find((c) => c.name === COOKIE);
  assert.ok(cookie, `no ${COOKIE} for ${graphqlUrl}`);
  assert.deepEqual([cookie.domain, cookie.secure, cookie.httpOnly, cookie.sameSite], ['127.0.0.1', true, true, 'Strict']);
  await screenshot(t, page, '50-loopback-profile');

  // A reload stays signed in: the cookie went along with refreshSession.
  const refresh = page.waitForRequest((request) => request.postData()?.includes('mutation Refresh'));
  await page.reload();
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  assert.match((await (await refresh).allHeaders()).cookie ?? '', new RegExp(`${COOKIE}=`));
  assert.equal(await page.locator('#session-rows tr[data-current="true"]').count(), 1);

  // Log out: the cookie is gone and a reload stays signed out.
  await page.click('#logout');
  await page.locator('body[data-state="signed-out"] #notice:not([hidden])', { hasText: 'You are logged out' }).waitFor();
  assert.equal((await context.cookies(graphqlUrl)).filter((c) => c.name === COOKIE).length, 0);
  await page.reload();
  await page.locator('body[data-state="signed-out"][data-ready="true"]').waitFor();
  assert.equal(await page.locator('#alert').isHidden(), true);

  // Nothing went to localhost: page, app server and gateway were all on 127.0.0.1.
  assert.deepEqual([...hosts].filter((host) => !host.startsWith('127.0.0.1:')), []);
  await context.close();
});
