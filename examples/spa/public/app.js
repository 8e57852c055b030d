// The spa-demo client: a public OAuth client in the browser (authorization code + PKCE), its
// tokens bound with DPoP (RFC 9449) to a P-256 key made by WebCrypto as non-extractable: the
// page can sign with it but no script can read it out, so a copied token is useless elsewhere.
// OAuth by oauth4webapi (served from this origin); no inline script (the CSP forbids it).
import * as oauth from '/vendor/oauth4webapi.js';

const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };

/** The DPoP key pair, kept in IndexedDB (a CryptoKey survives there without being exported). */
async function dpopKeyPair() {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('custos-spa-demo', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const run = (mode, action) => new Promise((resolve, reject) => {
    const request = action(db.transaction('keys', mode).objectStore('keys'));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  let pair = await run('readonly', (store) => store.get('dpop'));
  if (!pair) {
    pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    await run('readwrite', (store) => store.put(pair, 'dpop'));
  }
  return pair;
}

/** RFC 7638 thumbprint of the public key (for `dpop_jkt` and to show beside the token's `cnf.jkt`). */
async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify({ crv, kty, x, y })));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function claimsOf(jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(part));
}

/** Runs `request` once more when the server asks for a DPoP nonce (the handle has kept it). */
async function withNonceRetry(request, process) {
  try {
    return await process(await request());
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return process(await request());
  }
}

async function main() {
  const config = await (await fetch('/config.json')).json();
  const issuer = new URL(config.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer));
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'none' };
  const keyPair = await dpopKeyPair();
  const DPoP = oauth.DPoP(client, keyPair);
  const jkt = await thumbprint(keyPair.publicKey);

  const show = () => {
    const token = sessionStorage.getItem('access_token');
    $('sign-in').hidden = Boolean(token);
    $('call-api').hidden = !token;
    $('sign-out').hidden = !token;
    $('token-section').hidden = !token;
    if (!token) return status('Not signed in.');
    $('token-type').textContent = sessionStorage.getItem('token_type');
    $('jkt').textContent = claimsOf(token).cnf?.jkt ?? '(none)';
    $('extractable').textContent = String(keyPair.privateKey.extractable);
    status(`Signed in as ${claimsOf(token).sub}; the token is bound to this page's key.`);
  };

  $('sign-in').addEventListener('click', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    sessionStorage.setItem('pkce', verifier);
    sessionStorage.setItem('state', state);
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: config.redirect_uri,
      response_type: 'code',
      scope: 'openid orders:read',
      resource: config.resource,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      // Binds the code to this key before the user signs in (RFC 9449 §10).
      dpop_jkt: jkt,
    }).toString();
    location.assign(url);
  });

  $('call-api').addEventListener('click', () => callApi().catch((error) => status(`Error: ${error.error ?? error.message}`)));
  async function callApi() {
    const api = new URL(config.api);
    // The demo API is on this page's loopback origin over http; oauth4webapi otherwise insists on https.
    const loopback = api.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(api.hostname);
    const response = await oauth.protectedResourceRequest(sessionStorage.getItem('access_token'), 'GET', api, undefined, undefined, { DPoP, [oauth.allowInsecureRequests]: loopback });
    $('api-section').hidden = false;
    $('api-result').textContent = `${response.status}\n${JSON.stringify(await response.json(), null, 2)}`;
    status(response.ok ? 'The API accepted the token and its proof.' : 'The API refused the request.');
  }

  $('sign-out').addEventListener('click', () => {
    sessionStorage.clear();
    $('api-section').hidden = true;
    show();
  });

  const here = new URL(location.href);
  if (here.searchParams.has('code') || here.searchParams.has('error')) {
    history.replaceState(null, '', '/');
    status('Redeeming the code…');
    const params = oauth.validateAuthResponse(as, client, here, sessionStorage.getItem('state'));
    const tokens = await withNonceRetry(
      () => oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, config.redirect_uri, sessionStorage.getItem('pkce'), { DPoP }),
      (response) => oauth.processAuthorizationCodeResponse(as, client, response),
    );
    sessionStorage.removeItem('pkce');
    sessionStorage.removeItem('state');
    sessionStorage.setItem('access_token', tokens.access_token);
    sessionStorage.setItem('token_type', tokens.token_type);
  }
  show();
}

main().catch((error) => {
  status(`Error: ${error.error ?? error.message}`);
});
