// UserSig v2, made in the browser (docs/compatibility.md; Tencent's
// "Generating UserSig"): HMAC-SHA256 over the TLS fields with the app's
// secret key, a JSON document, zlib ("deflate" in CompressionStream),
// then base64 with '+' '/' '=' replaced by '*' '-' '_'. The key is
// imported as a non-extractable CryptoKey and the string is not kept.

const enc = new TextEncoder();

function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** cryptoAvailable reports whether Web Crypto and CompressionStream are usable here. */
export function cryptoAvailable() {
  return Boolean(globalThis.crypto && crypto.subtle && globalThis.CompressionStream);
}

/** importKey turns the app's secret key into a non-extractable HMAC key. */
export async function importKey(secret) {
  return crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/** genUserSig makes a UserSig v2 for identifier, valid expire seconds from now. */
export async function genUserSig(key, sdkAppId, identifier, expire, now = Math.floor(Date.now() / 1000)) {
  const app = Number(sdkAppId);
  const content = `TLS.identifier:${identifier}\nTLS.sdkappid:${app}\nTLS.time:${now}\nTLS.expire:${expire}\n`;
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(content)));
  const doc = JSON.stringify({
    'TLS.ver': '2.0', 'TLS.identifier': identifier, 'TLS.sdkappid': app,
    'TLS.expire': expire, 'TLS.time': now, 'TLS.sig': base64(mac),
  });
  const z = await new Response(new Blob([enc.encode(doc)]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer();
  return base64(new Uint8Array(z)).replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}
