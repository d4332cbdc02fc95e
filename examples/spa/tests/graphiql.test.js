// The gateway's GraphiQL page (GET /graphql from a browser): it loads with
// every request off the loopback interface refused, so nothing it needs may
// come from a CDN; its bar signs in with the refresh token in the HttpOnly
// cookie; an operation from the editor then runs with the access token.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { browser, screenshot, stack, stackAndBrowserPerFile } from './stack.js';

const COOKIE = '__Host-gatehouse-refresh';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

stackAndBrowserPerFile();

/** The operation a GraphiQL request to the gateway runs (its `operationName`, else the first name in it). */
function operationOf(request) {
  if (request.method() !== 'POST') return null;
  try {
    const body = JSON.parse(request.postData() ?? '{}');
    return body.operationName ?? body.query?.match(/\b(?:query|mutation)\s+(\w+)/)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Whether the Monaco editor in `selector` shows `text` (Monaco renders spaces as no-break spaces). */
function editorShows(page, selector, text) {
  return page.waitForFunction(
    ([selector, text]) => document.querySelector(`${selector} .view-lines`)?.textContent.replace(/\u00a0/g, ' ').includes(text),
    [selector, text],
    { timeout: 30_000 },
  );
}

/**
 * A browser context that is offline except for the loopback interface, and
 * records every request it refused or that left the gateway's origin.
 */
async function offlineContext(gatewayOrigin) {
  const context = await browser.newContext();
  const seen = { refused: [], foreign: [], failed: [] };
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (LOOPBACK.has(url.hostname)) return route.continue();
    seen.refused.push(url.href);
    return route.abort('internetdisconnected');
  });
  context.on('request', (request) => {
    const url = new URL(request.url());
    // data: (GraphiQL's inlined fonts) and blob: URLs never reach a network.
    if (['data:', 'blob:'].includes(url.protocol)) return;
    if (url.origin !== gatewayOrigin) seen.foreign.push(url.href);
  });
  context.on('requestfailed', (request) => seen.failed.push(`${request.url()}: ${request.failure()?.errorText}`));
  return { context, seen };
}

test('GraphiQL loads offline, signs in through its bar and runs Me as the admin', { timeout: 120_000 }, async (t) => {
  const gatewayOrigin = new URL(stack.gatewayUrl).origin;
  const { context, seen } = await offlineContext(gatewayOrigin);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  // Anything the page's Content-Security-Policy refused (scripts, workers, styles, fonts).
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) =>
      window.__cspViolations.push(`${event.effectiveDirective} refused ${event.blockedURI}`),
    );
  });
  const assets = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.startsWith('/graphiql/assets/')) assets.push(response);
  });

  const served = await page.goto(stack.graphqlUrl);
  assert.equal(served.status(), 200);
  const csp = served.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);

  // The editor renders: Monaco, the sample tabs, the Login operation in the query editor.
  const queryEditor = page.locator('.graphiql-query-editor .monaco-editor .view-lines');
  await queryEditor.waitFor({ timeout: 30_000 });
  await editorShows(page, '.graphiql-query-editor', 'mutation Login($login: String!, $password: String!)');
  // In development the sample's variables hold the seeded admin the banner prints.
  await editorShows(page, '.graphiql-editor-tool', `"login": "${stack.admin.email}"`);
  for (const title of ['Login', 'Me', 'Users']) {
    assert.equal(await page.locator('.graphiql-tab-button', { hasText: new RegExp(`^${title}$`) }).count(), 1, `tab ${title}`);
  }
  await page.locator('.gh-bar[data-session="signed-out"]').waitFor();
  await screenshot(t, page, '40-graphiql-signed-out');

  // Sign in through the bar, as the seeded SYS_ADMIN.
  const loginRequest = page.waitForRequest((request) => operationOf(request) === 'Login');
  const loginResponse = page.waitForResponse((response) => operationOf(response.request()) === 'Login');
  await page.locator('#gh-login').fill(stack.admin.email);
  await page.locator('#gh-password').fill(stack.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.gh-bar[data-session="signed-in"] .gh-username').waitFor();
  const username = await page.locator('.gh-username').textContent();
  assert.ok(username, 'the bar names who is signed in');
  assert.equal(await page.locator('.gh-role').textContent(), 'SYS_ADMIN');
  assert.match((await loginRequest).postData(), /refreshTokenIn: COOKIE/);
  const login = await (await loginResponse).json();
  assert.equal(login.data.login.refreshToken ?? null, null, 'the refresh token is not in the body');

  // The refresh token is in the HttpOnly cookie; the access token is in no storage.
  const cookie = (await context.cookies(stack.graphqlUrl)).find((c) => c.name === COOKIE);
  assert.ok(cookie?.httpOnly, `no HttpOnly ${COOKIE} cookie`);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(login.data.login.accessToken) && !stored.includes(cookie.value), 'a token is in storage');

  // Run the sample Me as it is: GraphiQL's request carries the access token.
  await page.locator('.graphiql-tab-button', { hasText: /^Me$/ }).click();
  await editorShows(page, '.graphiql-query-editor', 'query Me {');
  const meRequest = page.waitForRequest((request) => operationOf(request) === 'Me');
  const meResponse = page.waitForResponse((response) => operationOf(response.request()) === 'Me');
  await page.locator('.graphiql-execute-button').click();
  assert.match((await meRequest).headers().authorization ?? '', /^Bearer ey/);
  const me = await (await meResponse).json();
  assert.equal(me.errors, undefined, JSON.stringify(me.errors));
  assert.equal(me.data.me.username, username);
  assert.equal(me.data.me.email, stack.admin.email);
  assert.ok(me.data.me.roles.includes('SYS_ADMIN'));
  await editorShows(page, '.graphiql-response', `"username": "${username}"`);
  await screenshot(t, page, '41-graphiql-me');

  // Sign out: the bar offers sign-in again and the session cookie is cleared.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('.gh-bar[data-session="signed-out"]').waitFor();
  assert.equal((await context.cookies(stack.graphqlUrl)).find((c) => c.name === COOKIE), undefined);

  // Offline: nothing was refused or even tried outside the gateway's origin,
  // every asset came from the binary with a long-lived cache, and nothing
  // broke (no failed request, error or CSP refusal).
  assert.deepEqual(seen.refused, [], 'requests off the loopback interface');
  assert.deepEqual(seen.foreign, [], "requests outside the gateway's origin");
  assert.deepEqual(seen.failed, [], 'failed requests');
  assert.ok(assets.some((response) => response.url().endsWith('.css')), 'a stylesheet from /graphiql/assets/');
  // The editor starts its GraphQL worker lazily: give it a moment to ask.
  const isWorker = (response) => /\/graphql\.worker-\w+\.js$/.test(response.url());
  for (let waited = 0; waited < 10_000 && !assets.some(isWorker); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(assets.some(isWorker), 'the GraphQL worker');
  for (const response of assets) {
    assert.equal(response.status(), 200, response.url());
    assert.match(response.headers()['cache-control'] ?? '', /immutable/, response.url());
  }
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'CSP refusals');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the sample Login run from the editor signs the page in, and Users then runs', { timeout: 120_000 }, async () => {
  const { context, seen } = await offlineContext(new URL(stack.gatewayUrl).origin);
  const page = await context.newPage();
  await page.goto(stack.graphqlUrl);
  await editorShows(page, '.graphiql-query-editor', 'mutation Login(');
  await page.locator('.gh-bar[data-session="signed-out"]').waitFor();

  // The sample runs as it is: `gatehouse dev` filled its variables with the development admin.
  await editorShows(page, '.graphiql-editor-tool', `"password": "${stack.admin.password}"`);
  const loginResponse = page.waitForResponse((response) => operationOf(response.request()) === 'Login');
  const refreshRequest = page.waitForRequest((request) => operationOf(request) === 'Refresh');
  await page.locator('.graphiql-execute-button').click();
  const login = await (await loginResponse).json();
  assert.equal(login.errors, undefined, JSON.stringify(login.errors));

  // The page takes the cookie's session over (one refreshSession) and shows who it is.
  await refreshRequest;
  await page.locator('.gh-bar[data-session="signed-in"] .gh-username').waitFor();
  assert.equal(await page.locator('.gh-username').textContent(), login.data.login.user.username);
  await editorShows(page, '.graphiql-response', '"expiresIn"');

  // The sample Users runs as it is too, with its variables (ADMIN and above).
  await page.locator('.graphiql-tab-button', { hasText: /^Users$/ }).click();
  await editorShows(page, '.graphiql-query-editor', 'query Users(');
  const usersResponse = page.waitForResponse((response) => operationOf(response.request()) === 'Users');
  await page.locator('.graphiql-execute-button').click();
  const users = await (await usersResponse).json();
  assert.equal(users.errors, undefined, JSON.stringify(users.errors));
  assert.ok(users.data.users.edges.some(({ node }) => node.email === stack.admin.email));
  assert.deepEqual([...seen.refused, ...seen.foreign, ...seen.failed], []);
  await context.close();
});
