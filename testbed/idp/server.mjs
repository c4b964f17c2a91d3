// Local Entra-look-alike OIDC provider for loopback tests (panva/oidc-provider).
// Issues RS256 JWT access tokens via the client_credentials grant.
// Adapted from the project's shared reference IdP (tested 2026-11-22); started and stopped by
// ../idp.sh, which passes `--state-dir DIR` (ignored here; it ties the process to its state dir).
// Changes: IDP_CLIENT_SECRET_FILE, and /__stats counts token requests (token_requests,
// tokens_issued, token_errors) so tests can see refreshes.
//
// Env: IDP_PORT (8443), IDP_TENANT, IDP_CLIENT_ID, IDP_CLIENT_SECRET (or IDP_CLIENT_SECRET_FILE),
//      IDP_RESOURCE (api://slurm), IDP_TTL (seconds), IDP_SLURM_USER (claim "sun"),
//      IDP_JWT_TYP (JWT), IDP_EXTRA_CLIENTS ("id:secret:sun,..."; empty sun => no sun claim),
//      IDP_KEY_FILE (private RS256 JWK, created if missing), IDP_TLS_CERT/IDP_TLS_KEY.
import fs from 'node:fs';
import https from 'node:https';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const env = (k, d) => process.env[k] ?? d;
const PORT = Number(env('IDP_PORT', '8443'));
const TENANT = env('IDP_TENANT', '00000000-0000-4000-8000-000000000001');
const CLIENT_ID = env('IDP_CLIENT_ID', '11111111-2222-3333-4444-555555555555');
const CLIENT_SECRET = process.env.IDP_CLIENT_SECRET_FILE
  ? fs.readFileSync(process.env.IDP_CLIENT_SECRET_FILE, 'utf8').trim()
  : env('IDP_CLIENT_SECRET', 'local-test-secret');
const RESOURCE = env('IDP_RESOURCE', 'api://slurm');
const TTL = Number(env('IDP_TTL', '3600'));
const SLURM_USER = env('IDP_SLURM_USER', 'sdpsvc');
const JWT_TYP = env('IDP_JWT_TYP', 'JWT');
const KEY_FILE = env('IDP_KEY_FILE', new URL('./signing-key.json', import.meta.url).pathname);

// Entra v2 style: issuer = https://host/<tenant>/v2.0 ; MSAL authority = https://host/<tenant>
const PREFIX = `/${TENANT}/v2.0`;
const ISSUER = `https://127.0.0.1:${PORT}${PREFIX}`;

function loadOrCreateKey() {
  if (fs.existsSync(KEY_FILE)) return JSON.parse(fs.readFileSync(KEY_FILE, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  Object.assign(jwk, { kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' });
  fs.writeFileSync(KEY_FILE, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

// Extra clients "id:secret:sun[,id:secret:sun...]" (empty sun => token without a sun claim)
const CLIENTS = [{ id: CLIENT_ID, secret: CLIENT_SECRET, sun: SLURM_USER }].concat(
  (process.env.IDP_EXTRA_CLIENTS ?? '').split(',').filter(Boolean).map((c) => {
    const [id, secret, sun] = c.split(':');
    return { id, secret, sun };
  }),
);
const SUN = Object.fromEntries(CLIENTS.map((c) => [c.id, c.sun]));

let requests = 0;
const stats = { token_requests: 0, tokens_issued: 0, token_errors: 0 };
const provider = new Provider(ISSUER, {
  clients: CLIENTS.map((c) => ({
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post', // MSAL sends the secret in the form body
  })),
  jwks: { keys: [loadOrCreateKey()] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // MSAL sends no "resource" parameter, only scope=<resource>/.default (Entra v2 style):
      // derive the resource from the scope, reject unknown ones like Entra (AADSTS500011).
      defaultResource: async (ctx) => {
        const dflt = String(ctx.oidc.params.scope ?? '').split(' ').find((s) => s.endsWith('/.default'));
        return dflt ? dflt.slice(0, -'/.default'.length) : RESOURCE;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => {
        if (resource !== RESOURCE) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        return {
        scope: `${RESOURCE}/.default`,
        audience: RESOURCE,
        accessTokenTTL: TTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: () => TTL },
  // Claims Slurm needs ("sun") plus Entra-like app claims.
  extraTokenClaims: async (ctx, token) => ({
    ...(SUN[token.clientId] ? { sun: SUN[token.clientId] } : {}), azp: token.clientId, appid: token.clientId, tid: TENANT, ver: '2.0',
  }),
  formats: {
    customizers: {
      // oidc-provider uses typ "at+jwt" (RFC 9068); libjwt <= 1.11 (Debian 12 ships 1.10.2)
      // rejects any typ other than "JWT". Entra also uses "JWT".
      jwt: async (ctx, token, jwt) => { if (JWT_TYP !== 'at+jwt') jwt.header = { typ: JWT_TYP }; },
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.success', () => { stats.tokens_issued += 1; });
provider.on('grant.error', (ctx, err) => {
  stats.token_errors += 1;
  console.error('grant.error', err.message, err.error_description ?? '');
});

const handler = provider.callback();
const server = https.createServer({
  cert: fs.readFileSync(env('IDP_TLS_CERT', new URL('../pki/tls.crt', import.meta.url).pathname)),
  key: fs.readFileSync(env('IDP_TLS_KEY', new URL('../pki/tls.key', import.meta.url).pathname)),
}, (req, res) => {
  requests += 1;
  console.log(`${new Date().toISOString()} #${requests} ${req.method} ${req.url}`);
  if (req.url === '/__stats') { res.end(JSON.stringify({ requests, ...stats })); return; }
  if (req.method === 'POST' && req.url === `${PREFIX}/token`) stats.token_requests += 1;
  if (req.url === PREFIX || req.url.startsWith(`${PREFIX}/`)) {
    // "mount" the provider under the issuer path, as express/koa-mount would
    req.originalUrl = req.url;
    req.url = req.url.slice(PREFIX.length) || '/';
    handler(req, res);
    return;
  }
  res.statusCode = 404; res.end('not found');
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc-provider listening; issuer=${ISSUER} authority=https://127.0.0.1:${PORT}/${TENANT}`);
});
