// The real Gatehouse stack for the browser tests: one `gatehouse dev` per
// test file, isolated from every other test (its own databases, Redis key
// prefix, JetStream streams, dev folder and ports), plus the browser and the
// small helpers the tests share. Mirrors `Isolated` in tests/cli.rs.

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { after, before } from 'node:test';

import { chromium } from 'playwright-core';

import { SESSION_OPERATIONS } from '../gatehouse-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const outputDir = path.resolve(here, '../test-output');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `probe()` returns something truthy, or fails naming `what`. */
export async function eventually(what, probe, { timeoutMs = 15_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

function binary() {
  const bin = process.env.GATEHOUSE_BIN ?? path.join(repoRoot, 'target/debug/gatehouse');
  if (!existsSync(bin)) {
    throw new Error(
      `the gatehouse binary is missing at ${bin}: run \`cargo build --bin gatehouse\` in ${repoRoot} ` +
        '(or point GATEHOUSE_BIN at a built binary)',
    );
  }
  return bin;
}

/**
 * Starts `gatehouse dev` and resolves once its banner has named every URL
 * and the gateway is ready. `env` adds or overrides variables.
 */
export async function startStack({ env = {} } = {}) {
  const bin = binary();
  const id = `spa_${randomBytes(6).toString('hex')}`;
  const devDir = path.join(os.tmpdir(), `gatehouse-${id}`);
  mkdirSync(devDir, { recursive: true });
  const database = (service) => `postgres://postgres@127.0.0.1:5432/gh_${id}_${service}`;
  const childEnv = {
    ...process.env,
    GATEWAY_LISTEN: '127.0.0.1:0',
    AUTH_LISTEN: '127.0.0.1:0',
    USERS_LISTEN: '127.0.0.1:0',
    DEV_APP_LISTEN: '127.0.0.1:0',
    AUTH_DATABASE_URL: database('auth'),
    USERS_DATABASE_URL: database('users'),
    REDIS_KEY_PREFIX: `${id}:`,
    GATEHOUSE_EVENTS_STREAM: id.toUpperCase(),
    GATEHOUSE_EVENTS_SUBJECT_PREFIX: id,
    GATEHOUSE_DEV_DIR: devDir,
    RUST_LOG: 'warn',
    ...env,
  };
  delete childEnv.GATEHOUSE_ENV;

  const child = spawn(bin, ['dev'], { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const stack = {
    id,
    devDir,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        let timer;
        const late = new Promise((resolve) => {
          timer = setTimeout(resolve, 15_000, null);
        });
        const stopped = await Promise.race([exited, late]);
        clearTimeout(timer);
        if (!stopped) {
          console.error(`gatehouse dev ignored SIGTERM for 15 s; killing it\n${stderr}`);
          child.kill('SIGKILL');
          await exited;
        }
      }
      await cleanup(id, devDir);
    },
  };

  try {
    const banner = await readBanner(child, exited, () => stderr);
    Object.assign(stack, banner);
    stack.graphqlUrl = `${banner.gatewayUrl}/graphql`;
    await eventually('the gateway to be ready', async () => (await fetch(`${banner.gatewayUrl}/ready`)).ok, {
      timeoutMs: 30_000,
    });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

/** Reads the banner lines the tests need; stdout keeps being drained after. */
function readBanner(child, exited, stderr) {
  const lines = createInterface({ input: child.stdout });
  const found = {};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no complete banner within 120 s\n${stderr()}`)), 120_000);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse dev exited (code ${code}, signal ${signal}) before its banner:\n${stderr()}`));
    });
    lines.on('line', (line) => {
      const [, label, value] = line.match(/^\s+([A-Za-z_ ]+):\s+(.*)$/) ?? [];
      const url = value?.match(/^(http:\/\/localhost:\d+)/)?.[1];
      if (label === 'Gateway' && url) found.gatewayUrl = url;
      if (label === 'App' && url) found.appUrl = url;
      if (label === 'Mail') found.mailDir = value.trim();
      if (label === 'SYS_ADMIN') {
        const [email, password] = value.split(' / ').map((s) => s.trim());
        found.admin = { email, password };
      }
      if (found.gatewayUrl && found.admin) {
        clearTimeout(timer);
        if (!found.appUrl) {
          reject(new Error('the banner has no `App:` line: does this gatehouse binary serve examples/spa/?'));
        } else if (!found.mailDir || !found.admin.password) {
          reject(new Error(`the banner lacks the Mail folder or the admin password: ${JSON.stringify(found)}`));
        } else {
          resolve(found);
        }
      }
    });
  });
}

async function cleanup(id, devDir) {
  const run = promisify(execFile);
  for (const service of ['auth', 'users']) {
    await run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `DROP DATABASE IF EXISTS "gh_${id}_${service}" WITH (FORCE)`]).catch(
      (error) => console.error(`could not drop gh_${id}_${service}: ${error.message}`),
    );
  }
  for (const stream of [id.toUpperCase(), `${id.toUpperCase()}_DLQ`]) {
    await deleteStream(stream).catch((error) => console.error(`could not delete stream ${stream}: ${error.message}`));
  }
  await deleteRedisKeys(`${id}:*`).catch(() => {});
  await rm(devDir, { recursive: true, force: true });
}

/**
 * Deletes a JetStream stream with one request over the plain NATS protocol
 * (no NATS client package, no `nats` CLI needed).
 */
function deleteStream(name) {
  return new Promise((resolve, reject) => {
    const inbox = `_INBOX.${randomBytes(8).toString('hex')}`;
    const socket = net.connect(4222, '127.0.0.1');
    let buffer = '';
    let sent = false;
    const finish = (error) => {
      socket.destroy();
      error ? reject(error) : resolve();
    };
    socket.setTimeout(5_000, () => finish(new Error('NATS did not answer')));
    socket.on('error', finish);
    socket.on('data', (chunk) => {
      buffer += chunk;
      if (!sent && buffer.includes('\r\n')) {
        sent = true;
        socket.write(
          `CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${inbox} 1\r\n` +
            `PUB $JS.API.STREAM.DELETE.${name} ${inbox} 0\r\n\r\n`,
        );
      }
      if (buffer.includes('PING\r\n')) {
        buffer = buffer.replace('PING\r\n', '');
        socket.write('PONG\r\n');
      }
      const reply = buffer.match(new RegExp(`MSG ${inbox.replace('.', '\\.')} 1 \\d+\\r\\n(.*)\\r\\n`));
      if (reply) {
        // {"success":true} or a "stream not found" error: either way it is gone.
        finish();
      }
    });
  });
}

/** Removes the test's Redis keys when redis-cli is installed (they expire anyway). */
async function deleteRedisKeys(pattern) {
  const run = promisify(execFile);
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '--scan', '--pattern', pattern]);
  const keys = stdout.split('\n').filter(Boolean);
  for (let i = 0; i < keys.length; i += 500) {
    await run('redis-cli', ['-h', '127.0.0.1', 'DEL', ...keys.slice(i, i + 500)]);
  }
}

/** One GraphQL call from Node, the way a non-browser client makes it. */
export async function graphql(stack, query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(stack.graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return response.json();
}

/**
 * The seeded SYS_ADMIN's access token, logged in from Node with the app's
 * own login document (so a gateway that runs trusted documents only takes it).
 */
export async function adminToken(stack) {
  const login = SESSION_OPERATIONS.find((operation) => operation.startsWith('mutation Login('));
  const answer = await graphql(stack, login, { login: stack.admin.email, password: stack.admin.password });
  const token = answer.data?.login?.accessToken;
  if (!token) throw new Error(`the admin could not log in: ${JSON.stringify(answer)}`);
  return token;
}

/** A fresh account's details; nothing is created yet. */
export function newAccount(tag = 'user') {
  const suffix = randomBytes(4).toString('hex');
  return {
    email: `${tag}-${suffix}@example.test`,
    username: `${tag}_${suffix}`,
    displayName: `${tag[0].toUpperCase()}${tag.slice(1)} ${suffix}`,
    password: `correct horse ${suffix} battery`,
  };
}

/** The verification code mailed to `email` (polls the dev mail folder). */
export async function verificationCode(stack, email) {
  return eventually(`the verification mail to ${email}`, async () => {
    for (const file of await readdir(stack.mailDir).catch(() => [])) {
      if (!file.endsWith('.eml')) continue;
      const text = await readFile(path.join(stack.mailDir, file), 'utf8');
      if (!text.includes(email)) continue;
      const code = text.match(/^Code: (\S+)/m)?.[1];
      if (code) return code;
    }
    return null;
  });
}

/** Signs up and verifies an account from Node, for tests about sessions. */
export async function createVerifiedAccount(stack, tag) {
  const account = newAccount(tag);
  const signUp = await graphql(
    stack,
    'mutation ($input: SignUpInput!) { signUp(input: $input) }',
    { input: { email: account.email, username: account.username, password: account.password, displayName: account.displayName } },
  );
  if (signUp.data?.signUp !== true) throw new Error(`signUp failed: ${JSON.stringify(signUp)}`);
  const code = await verificationCode(stack, account.email);
  const verified = await graphql(stack, 'mutation ($e: String!, $c: String!) { verifyEmail(email: $e, code: $c) }', {
    e: account.email,
    c: code,
  });
  if (verified.data?.verifyEmail !== true) throw new Error(`verifyEmail failed: ${JSON.stringify(verified)}`);
  return account;
}

/** Sums the samples of one metric on the gateway's /metrics whose labels include `labels`. */
export async function metric(stack, name, labels = '') {
  const text = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.trim().split(/\s+/).pop());
  }
  return sum;
}

export const browserArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium, headless; nothing is ever downloaded. */
export function launchBrowser() {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium is missing at ${executablePath}: apt-get install -y chromium`);
  }
  return chromium.launch({ headless: true, executablePath, args: browserArgs });
}

/**
 * The running stack and browser of this test file, set by
 * `stackAndBrowserPerFile` before the file's tests run (node --test gives
 * every file its own process, so these are per file).
 */
export let stack;
export let browser;

/**
 * Starts one isolated stack and one browser before this file's tests and
 * stops them after. `options` are `startStack`'s, or an async function
 * that makes them (when they depend on something the file starts first).
 */
export function stackAndBrowserPerFile(options) {
  before(async () => {
    stack = await startStack(typeof options === 'function' ? await options() : options);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });
}

/** Saves a screenshot under test-output/ and says where in the test log. */
export async function screenshot(t, page, name) {
  mkdirSync(outputDir, { recursive: true });
  const file = path.join(outputDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${path.relative(process.cwd(), file)}`);
  return file;
}

/**
 * Opens the app in a page and waits until it has decided who is signed in.
 * `init` runs in the page before any of the app's scripts; `url` opens the
 * app somewhere else than the banner's address (say, on 127.0.0.1).
 */
export async function openApp(context, stack, { init, url = `${stack.appUrl}/` } = {}) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  await page.locator('body[data-ready="true"]').waitFor();
  return page;
}

/** Logs in through the login form and waits for the profile. */
export async function logIn(page, login, password) {
  await page.locator('#login-form [name="login"]').fill(login);
  await page.locator('#login-form [name="password"]').fill(password);
  await page.locator('#login-form button[type="submit"]').click();
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
}

/** Signs `account` up and verifies it through the app's own forms. */
export async function signUpThroughForms(page, stack, account) {
  await page.click('[data-tab="signup"]');
  const signUp = page.locator('#signup-form');
  await signUp.locator('[name="email"]').fill(account.email);
  await signUp.locator('[name="username"]').fill(account.username);
  await signUp.locator('[name="displayName"]').fill(account.displayName);
  await signUp.locator('[name="password"]').fill(account.password);
  await signUp.locator('button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'verification code' }).waitFor();
  await page.locator('#verify-form [name="code"]').fill(await verificationCode(stack, account.email));
  await page.locator('#verify-form button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'Email verified' }).waitFor();
}

/** The GraphQL operation name of a request to the gateway, if it is one. */
export function operationOf(request) {
  if (request.method() !== 'POST') return null;
  try {
    return JSON.parse(request.postData() ?? '{}').query?.match(/^\s*(?:query|mutation)\s+(\w+)/)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Watches `refreshSession` calls in a browser context: how many, how many at
 * once at most, and every answer.
 */
export function watchRefreshes(context) {
  const watch = { started: 0, inFlight: 0, maxInFlight: 0, answers: [] };
  const done = (request) => {
    if (operationOf(request) === 'Refresh') watch.inFlight -= 1;
  };
  context.on('request', (request) => {
    if (operationOf(request) !== 'Refresh') return;
    watch.started += 1;
    watch.inFlight += 1;
    watch.maxInFlight = Math.max(watch.maxInFlight, watch.inFlight);
  });
  context.on('requestfinished', done);
  context.on('requestfailed', done);
  context.on('response', async (response) => {
    if (operationOf(response.request()) !== 'Refresh') return;
    watch.answers.push(await response.json().catch(() => ({ unreadable: response.status() })));
  });
  return watch;
}

/** The bearer token of the next call a page makes to the gateway. */
export function nextBearer(page) {
  return page
    .waitForRequest((request) => request.headers().authorization?.startsWith('Bearer '))
    .then((request) => request.headers().authorization.slice('Bearer '.length));
}
