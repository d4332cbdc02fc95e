// What README.md's "Use it from GraphQL clients" says, checked against the
// gateway: the requests urql, Apollo Client and Relay send, built the way
// their fetch calls build them (method, URL, headers, body), from the app's
// page on another origin, so that the CORS preflight and the refresh cookie
// are part of it. No client library is installed: the requests are the point.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { browser, createVerifiedAccount, logIn, openApp, repoRoot, stack, stackAndBrowserPerFile } from './stack.js';

stackAndBrowserPerFile();

let elsewhere; // a page server on an origin the gateway does not list
before(async () => {
  elsewhere = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<!doctype html><title>Elsewhere</title>');
  });
  await new Promise((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
});
after(() => new Promise((resolve) => (elsewhere ? elsewhere.close(resolve) : resolve())));

/** The README's section, up to the next heading. */
async function readmeSection(title) {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README.md has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return { readme, start, section: readme.slice(start, end < 0 ? undefined : end) };
}

/**
 * Runs in the page: sends one request per client setup, exactly as that
 * client builds it, and returns what the page could read of each answer.
 */
function sendAsClients({ url, token }) {
  const ME = 'query Me { me { username } }';
  const bearer = { authorization: `Bearer ${token}` };
  // urql (@urql/core 6): GET for queries within the URL limit; its body's
  // fields become search parameters; `accept` is its only own header.
  const URQL_ACCEPT = 'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed';
  const urqlGet = (body) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) if (value) params.set(key, typeof value === 'object' ? JSON.stringify(value) : value);
    return `${url}?${params}`;
  };
  // Apollo Client: `content-type: application/json` always, GET included.
  const APOLLO_HEADERS = { accept: 'application/graphql-response+json', 'content-type': 'application/json' };
  const apolloGet = (body) =>
    `${url}?query=${encodeURIComponent(body.query)}&operationName=${encodeURIComponent(body.operationName)}&variables=${encodeURIComponent(JSON.stringify(body.variables))}`;

  const requests = {
    'urql default (GET, no header)': () =>
      fetch(urqlGet({ query: '{ __typename }' }), { method: 'GET', credentials: 'include', headers: { accept: URQL_ACCEPT } }),
    'urql with apollo-require-preflight (GET)': () =>
      fetch(urqlGet({ query: ME, operationName: 'Me' }), {
        method: 'GET',
        credentials: 'include',
        headers: { accept: URQL_ACCEPT, 'apollo-require-preflight': 'true', ...bearer },
      }),
    'GET with x-apollo-operation-name': () =>
      fetch(urqlGet({ query: ME, operationName: 'Me' }), {
        method: 'GET',
        credentials: 'include',
        headers: { accept: URQL_ACCEPT, 'x-apollo-operation-name': 'Me', ...bearer },
      }),
    'urql with preferGetMethod: false (POST)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { accept: URQL_ACCEPT, 'content-type': 'application/json', ...bearer },
        body: JSON.stringify({ query: ME, operationName: 'Me' }),
      }),
    'Apollo Client HttpLink (POST)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { ...APOLLO_HEADERS, ...bearer },
        body: JSON.stringify({ operationName: 'Me', variables: {}, query: ME }),
      }),
    'Apollo Client with useGETForQueries (GET)': () =>
      fetch(apolloGet({ operationName: 'Me', variables: {}, query: ME }), {
        method: 'GET',
        credentials: 'include',
        headers: { ...APOLLO_HEADERS, ...bearer },
      }),
    'Relay fetch function (POST)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', ...bearer },
        body: JSON.stringify({ query: ME, variables: {} }),
      }),
    // The cookie travels: a refresh with nothing but the cookie.
    'Relay fetch function, refreshSession with the cookie (POST)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation Refresh { refreshSession { expiresIn } }', variables: {} }),
      }),
    'Apollo Client given a name (apollographql-client-name)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { ...APOLLO_HEADERS, 'apollographql-client-name': 'web', 'apollographql-client-version': '1.0', ...bearer },
        body: JSON.stringify({ operationName: 'Me', variables: {}, query: ME }),
      }),
    'a header nobody allowed (x-custom)': () =>
      fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', 'x-custom': '1', ...bearer },
        body: JSON.stringify({ query: ME, variables: {} }),
      }),
  };
  return Promise.all(
    Object.entries(requests).map(async ([name, send]) => {
      try {
        const response = await send();
        return [name, { status: response.status, body: await response.json() }];
      } catch (error) {
        return [name, { blocked: error.name }];
      }
    }),
  ).then(Object.fromEntries);
}

test('the README tells GraphQL client users about the CSRF rule, right after the browser app section', async () => {
  const { readme, start, section } = await readmeSection('Use it from GraphQL clients');
  const previous = readme.lastIndexOf('\n## ', start - 1);
  assert.equal(readme.slice(previous, readme.indexOf('\n', previous + 1)), '\n## Use it from a browser app');
  for (const needed of ['urql', 'preferGetMethod', 'Apollo Client', 'useGETForQueries', 'Relay', 'apollo-require-preflight', 'x-apollo-operation-name', 'content-type: application/json', 'GATEWAY_CORS_ORIGINS', "credentials: 'include'", 'preflight']) {
    assert.ok(section.includes(needed), `the section does not mention ${needed}`);
  }
});

test('the requests of the README\'s client setups pass the CSRF rule and CORS; a plain GET is refused as quoted', { timeout: 60_000 }, async () => {
  const { section } = await readmeSection('Use it from GraphQL clients');
  const account = await createVerifiedAccount(stack, 'clients');
  const context = await browser.newContext();
  const page = await openApp(context, stack); // on the app's origin, which the dev gateway lists
  const login = page.waitForResponse((response) => response.request().postData()?.includes('mutation Login'));
  await logIn(page, account.username, account.password);
  const token = (await (await login).json()).data.login.accessToken;

  const answers = await page.evaluate(sendAsClients, { url: stack.graphqlUrl, token });
  const me = { status: 200, body: { data: { me: { username: account.username } } } };

  // urql's default GET is refused, with the answer the README quotes.
  const refused = answers['urql default (GET, no header)'];
  assert.equal(refused.status, 400, JSON.stringify(refused));
  assert.equal(refused.body.errors[0].extensions.code, 'BAD_REQUEST');
  assert.ok(section.includes(JSON.stringify(refused.body)), `the README does not quote the answer ${JSON.stringify(refused.body)}`);
  assert.ok(section.includes('HTTP 400'));

  // Every setup the README shows passes, the bearer token and the cookie with it.
  for (const name of [
    'urql with apollo-require-preflight (GET)',
    'GET with x-apollo-operation-name',
    'urql with preferGetMethod: false (POST)',
    'Apollo Client HttpLink (POST)',
    'Apollo Client with useGETForQueries (GET)',
    'Apollo Client given a name (apollographql-client-name)',
    'Relay fetch function (POST)',
  ]) {
    assert.deepEqual(answers[name], me, name);
  }
  const refreshed = answers['Relay fetch function, refreshSession with the cookie (POST)'];
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed));
  assert.ok(refreshed.body.data.refreshSession.expiresIn > 0, JSON.stringify(refreshed));

  // A header the gateway does not allow fails the preflight: the request is never sent.
  assert.deepEqual(answers['a header nobody allowed (x-custom)'], { blocked: 'TypeError' });

  // From an origin missing from GATEWAY_CORS_ORIGINS the same requests fail their preflight.
  const other = await context.newPage();
  await other.goto(`http://127.0.0.1:${elsewhere.address().port}/`);
  const fromElsewhere = await other.evaluate(sendAsClients, { url: stack.graphqlUrl, token });
  for (const name of ['urql with apollo-require-preflight (GET)', 'Apollo Client HttpLink (POST)', 'Relay fetch function (POST)']) {
    assert.deepEqual(fromElsewhere[name], { blocked: 'TypeError' }, name);
  }
  await context.close();
});

test('the preflight: allowed for the listed origin with credentials and the README\'s headers, and for no other origin', async () => {
  const preflight = (origin, headers) =>
    fetch(stack.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': headers },
    });
  const allowed = await preflight(stack.appUrl, 'apollo-require-preflight,authorization');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.get('access-control-allow-origin'), stack.appUrl);
  assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
  const headers = allowed.headers.get('access-control-allow-headers').split(',');
  const { section } = await readmeSection('Use it from GraphQL clients');
  for (const header of headers) assert.ok(section.includes(`\`${header}\``), `the README does not list the allowed header ${header}`);
  assert.ok(headers.includes('apollographql-client-name') && !headers.includes('x-custom'));
  const refused = await preflight(`http://127.0.0.1:${elsewhere.address().port}`, 'apollo-require-preflight');
  assert.equal(refused.headers.get('access-control-allow-origin'), null);
});
