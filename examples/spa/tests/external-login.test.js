// Signing in with an outside OpenID provider through the example app, with
// a real provider (oidc-provider, from the workspace's tests/oidc-provider)
// that signs in whoever the test names: a first sign-in creates an account,
// a matching email links only with the account's password, and the
// account's sign-in providers can be unlinked unless it is the only way in.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';

import {
  browser,
  createVerifiedAccount,
  openApp,
  repoRoot,
  screenshot,
  stack,
  stackAndBrowserPerFile,
} from './stack.js';

const CLIENT = { id: 'gatehouse-auth', secret: 'gatehouse-auth-secret-0123456789' };
const providerDir = path.join(repoRoot, 'tests/oidc-provider');

/** A port nothing listens on right now. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts the provider; resolves with its issuer and the process. */
async function startProvider(env) {
  if (!existsSync(path.join(providerDir, 'node_modules/oidc-provider'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', providerDir], { stdio: 'inherit' });
  }
  const child = spawn(process.execPath, [path.join(providerDir, 'provider.mjs')], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the provider exited with ${code}`)));
  });
  // Keep reading: it prints notices, and a full pipe would stall it.
  lines.on('line', () => {});
  return { issuer: JSON.parse(first).issuer, child };
}

let provider;

// The provider first: the stack's auth service must know its issuer, and
// the provider the app's address (where it sends the browser back).
stackAndBrowserPerFile(async () => {
  const port = await freePort();
  const redirects = [`http://localhost:${port}/`, `http://127.0.0.1:${port}/`];
  provider = await startProvider({
    OIDC_RP_CLIENT_ID: CLIENT.id,
    OIDC_RP_CLIENT_SECRET: CLIENT.secret,
    OIDC_RP_REDIRECT_URI: redirects.join(','),
  });
  const line = `corp issuer=${provider.issuer} client_id=${CLIENT.id} client_secret=${CLIENT.secret} ${redirects
    .map((r) => `redirect=${r}`)
    .join(' ')}`;
  return { env: { DEV_APP_LISTEN: `127.0.0.1:${port}`, AUTH_OIDC_PROVIDERS: line } };
});
after(() => provider?.child.kill());

/** Tells the provider who signs in next, adding them first. */
async function nextSignIn(id, email) {
  const post = (url, body) =>
    fetch(`${provider.issuer}${url}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => assert.equal(r.status, 204));
  await post('/test/accounts', { id, email, email_verified: true, name: `${id} Example` });
  await post('/test/default-login', { id });
}

const alertCode = (page) => page.locator('#alert:not([hidden]) #alert-code');
const field = (page, name) => page.locator(`[data-field="${name}"]`);

async function signInWithCorp(page) {
  await page.locator('[data-external="corp"]').click();
}

test('a first outside sign-in creates the account; its only sign-in provider stays', { timeout: 90_000 }, async (t) => {
  const suffix = Date.now().toString(36);
  await nextSignIn(`dora${suffix}`, `dora-${suffix}@example.test`);
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await page.locator('[data-external="corp"]').waitFor();
  await screenshot(t, page, 'external-01-login');
  await signInWithCorp(page);
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  assert.equal(await field(page, 'username').textContent(), `dora${suffix}`);
  assert.ok(!page.url().includes('code='), 'the code is gone from the address bar');
  assert.equal(await page.locator('#linked-rows li[data-provider="corp"]').count(), 1);
  await screenshot(t, page, 'external-02-signed-in');
  // The account's only way in cannot be unlinked.
  await page.locator('#linked-rows button.unlink').click();
  await alertCode(page).filter({ hasText: 'FORBIDDEN' }).waitFor();
  assert.equal(await page.locator('#linked-rows li').count(), 1);
  await context.close();
});

test('a matching email links only with the password, and can be unlinked after', { timeout: 90_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'link');
  await nextSignIn(`erin${Date.now().toString(36)}`, account.email);
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await page.locator('[data-external="corp"]').waitFor();
  await signInWithCorp(page);
  await page.locator('#link-form:not([hidden])').waitFor();
  assert.equal(await page.locator('#link-provider').textContent(), 'corp');
  await screenshot(t, page, 'external-03-link');
  await page.locator('#link-form [name="password"]').fill('not the password');
  await page.locator('#link-form button[type="submit"]').click();
  await alertCode(page).filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
  await page.locator('#link-form [name="password"]').fill(account.password);
  await page.locator('#link-form button[type="submit"]').click();
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  assert.equal(await field(page, 'username').textContent(), account.username);
  await page.locator('#linked-rows li[data-provider="corp"]').waitFor();

  // With a password of its own, the account may drop the provider.
  await page.locator('#linked-rows button.unlink').click();
  await page.locator('#notice:not([hidden])', { hasText: 'unlinked' }).waitFor();
  assert.equal(await page.locator('#linked-rows li').count(), 0);
  assert.equal(await page.locator('#linked-none').isVisible(), true);
  await context.close();
});
