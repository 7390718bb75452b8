// `{{name}}`: a wirehook provider plugin. A route with `provider =
// "plugin:{{name}}"` runs `verify` on each request it receives; see
// wit/provider.wit for every type.
//
// As written it checks `X-Signature`, the hex HMAC-SHA256 of the body
// with the route's secret, and decodes a JSON object into one event of
// its `type`. The secret stays with wirehook: `keyed` computes and
// compares the MAC.

import { hexDecode, hexEncode, hmac, verifyMac } from 'wirehook:plugin/keyed@0.2.0';

export function verify(req) {
  const signature = req.headers.find(([name]) => name === 'x-signature')?.[1];
  if (signature === undefined) {
    throw { status: 401, reason: 'missing `X-Signature` header' };
  }
  let valid;
  try {
    valid = verifyMac(null, 'sha256', req.body, hexDecode(signature));
  } catch (reason) {
    throw { status: 401, reason: String(reason) };
  }
  if (!valid) {
    throw { status: 401, reason: 'signature mismatch' };
  }
  return [decode(req.body)];
}

// No GET handshake: wirehook answers a GET with 405.
export function handshake(_req) {
  return null;
}

// `wirehook sign --provider plugin:{{name}}`: the request verify accepts.
export function sign(payload, _nowMs, _publicUrl) {
  let mac;
  try {
    mac = hmac(null, 'sha256', payload);
  } catch (reason) {
    throw { tag: 'failed', val: String(reason) };
  }
  return {
    headers: [
      ['Content-Type', 'application/json'],
      ['X-Signature', hexEncode(mac)],
    ],
    body: payload,
  };
}

function decode(body) {
  let text;
  let value;
  try {
    text = utf8(body);
    value = JSON.parse(text);
  } catch {
    throw { status: 400, reason: 'the body is not JSON' };
  }
  return {
    kind: typeof value?.type === 'string' ? value.type : 'event',
    rawJson: text,
    providerId: typeof value?.id === 'string' ? value.id : null,
  };
}

// QuickJS has no TextDecoder; decodeURIComponent throws on bytes that are
// not UTF-8.
function utf8(bytes) {
  let escaped = '';
  for (const byte of bytes) {
    escaped += `%${byte.toString(16).padStart(2, '0')}`;
  }
  return decodeURIComponent(escaped);
}
