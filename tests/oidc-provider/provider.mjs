// A real OpenID provider for the gateway's tests: oidc-provider on a free
// local port, with signing keys made at start (PS256, ES256, EdDSA) and one
// confidential client that gets JWT access tokens for the Gatehouse API by
// the client-credentials grant.
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
  ],
  scopes: ['read', 'admin'],
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

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
