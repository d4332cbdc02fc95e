// A real OpenID provider for the tests: oidc-provider on a free local port,
// with signing keys made at start (RS256, PS256, ES256, EdDSA) and two
// confidential clients:
//   - OIDC_CLIENT_ID gets JWT access tokens for the Gatehouse API by the
//     client-credentials grant (the gateway's outside-provider tests);
//   - OIDC_RP_CLIENT_ID signs people in by the authorization-code flow with
//     PKCE, to OIDC_RP_REDIRECT_URI (comma-separated; the auth service's
//     external login).
// People: POST /test/accounts {"id", "email", "email_verified", "name"}
// adds one; an authorization request signs in the one its `login_hint`
// names (else OIDC_DEFAULT_LOGIN, or whom POST /test/default-login {"id"}
// named last), with no page to fill in, and grants what was asked.
//
// Prints one JSON line once it listens: { "issuer": "http://127.0.0.1:PORT" }.
// Stops when its standard input closes, so a test that dies leaves nothing
// behind.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const AUDIENCE = process.env.OIDC_AUDIENCE ?? 'https://api.gatehouse.test';
const CLIENT_ID = process.env.OIDC_CLIENT_ID ?? 'reporting';
const CLIENT_SECRET = process.env.OIDC_CLIENT_SECRET ?? 'reporting-secret-0123456789';
const ALG = process.env.OIDC_ACCESS_TOKEN_ALG ?? 'PS256';
const RP_CLIENT_ID = process.env.OIDC_RP_CLIENT_ID ?? 'gatehouse-auth';
const RP_CLIENT_SECRET = process.env.OIDC_RP_CLIENT_SECRET ?? 'gatehouse-auth-secret-0123456789';
// Comma-separated.
const RP_REDIRECT_URIS = (process.env.OIDC_RP_REDIRECT_URI ?? 'http://127.0.0.1:9/callback').split(',');
// Who signs in when an authorization request names nobody (a browser test's button).
let defaultLogin = process.env.OIDC_DEFAULT_LOGIN;

/** The people this provider knows, by account id. */
const accounts = new Map();

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg}-${randomUUID()}`, alg, use: 'sig' };
}

const keys = [
  // oidc-provider signs ID tokens with RS256 by default: it needs an RS256 key.
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  signingKey('rsa', { modulusLength: 2048 }, 'PS256'),
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  signingKey('ed25519', {}, 'EdDSA'),
];

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys },
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read admin',
    },
    {
      client_id: RP_CLIENT_ID,
      client_secret: RP_CLIENT_SECRET,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: RP_REDIRECT_URIS,
    },
  ],
  scopes: ['openid', 'email', 'profile', 'read', 'admin'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  pkce: { required: () => true },
  findAccount: (_ctx, id) => {
    const person = accounts.get(id);
    if (!person) return undefined;
    return { accountId: id, claims: () => ({ sub: id, preferred_username: id, ...person }) };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== AUDIENCE) {
          throw new Error(`unknown resource ${resource}`);
        }
        return {
          scope: 'read admin',
          audience: AUDIENCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ALG } },
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, error) => console.error('oidc-provider:', error));

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/test/accounts') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { id, ...claims } = JSON.parse(body);
      accounts.set(id, claims);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && req.url === '/test/default-login') {
      let body = '';
      for await (const chunk of req) body += chunk;
      defaultLogin = JSON.parse(body).id;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
      // No login page: the person the request's login_hint names signs in
      // and grants what the client asked for.
      const details = await provider.interactionDetails(req, res);
      const accountId = details.params.login_hint ?? defaultLogin;
      if (!accounts.has(accountId)) {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'unknown person' });
        return;
      }
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    callback(req, res);
  } catch (error) {
    console.error('provider test route:', error);
    res.writeHead(500).end();
  }
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
