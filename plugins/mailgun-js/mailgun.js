// `mailgun-js`: a provider plugin for Mailgun's webhooks, in JavaScript.
//
// Mailgun POSTs JSON with the proof inside the body:
//
//   {"signature": {"timestamp": "1700000000", "token": "…50 characters…",
//                  "signature": "…hex…"},
//    "event-data": {"event": "delivered", "id": "…", …}}
//
// `signature.signature` is the hex HMAC-SHA256 of timestamp and token, back
// to back, with the domain's webhook signing key. The host computes and
// compares it (`keyed.verify-mac`, constant time): this plugin never holds
// the key. A timestamp (seconds) more than five minutes from now is refused.
//
// Mailgun signs the timestamp and token only, not `event-data`: the proof
// says that Mailgun sent a request in the last five minutes, and nothing
// more. A captured signature could carry another `event-data` within that
// window; on a queue route the event's `id` dedups what Mailgun sends again.
//
// Each request is one event of kind `event-data.event` (`delivered`,
// `opened`, `failed`…), its JSON `event-data`, its id `event-data.id`.
//
// Route: `provider = "plugin:mailgun-js"`, `secret` = the webhook signing
// key (Mailgun: Sending → Webhooks → HTTP webhook signing key).

import { hexDecode, hexEncode, hmac, nowMs, sha256, verifyMac } from 'wirehook:plugin/keyed@0.2.0';

// How far the timestamp may be from now.
const TOLERANCE_MS = 5 * 60 * 1000;

// The length of the tokens Mailgun sends.
const TOKEN_LENGTH = 50;

function refuse(status, reason) {
  return { status, reason };
}

export function verify(req) {
  const contentType = req.headers.find(([name]) => name === 'content-type')?.[1];
  if (contentType !== undefined && !contentType.toLowerCase().startsWith('application/json')) {
    throw refuse(415, 'Mailgun sends JSON');
  }
  const body = parseJson(req.body);
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw refuse(400, 'the body is not a JSON object');
  }
  const proof = body.signature;
  if (proof === null || typeof proof !== 'object') {
    throw refuse(401, 'missing `signature`');
  }
  const { timestamp, token, signature } = proof;
  if (typeof timestamp !== 'string' || typeof token !== 'string' || typeof signature !== 'string') {
    throw refuse(401, '`signature` needs the strings `timestamp`, `token` and `signature`');
  }
  if (!/^[0-9]{1,12}$/.test(timestamp)) {
    throw refuse(401, '`signature.timestamp` is not a number of seconds');
  }
  if (Math.abs(Number(nowMs()) - Number(timestamp) * 1000) > TOLERANCE_MS) {
    throw refuse(401, "timestamp outside the five minutes' tolerance");
  }
  let expected;
  try {
    expected = hexDecode(signature);
  } catch {
    throw refuse(401, '`signature.signature` is not hex');
  }
  let valid;
  try {
    valid = verifyMac(null, 'sha256', encodeUtf8(timestamp + token), expected);
  } catch (reason) {
    throw refuse(401, String(reason));
  }
  if (!valid) {
    throw refuse(401, 'signature mismatch');
  }
  return [decode(body)];
}

// Mailgun makes no GET handshake: wirehook answers a GET with 405.
export function handshake(_req) {
  return null;
}

// The request Mailgun would send at `now` for `payload`: the event itself
// (`event-data`), or a whole Mailgun body whose `signature` is replaced.
export function sign(payload, now, _publicUrl) {
  const value = parseJson(payload);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw { tag: 'failed', val: 'the payload is not a JSON object' };
  }
  const body = Object.hasOwn(value, 'event-data') ? value : { 'event-data': value };
  try {
    decode(body);
  } catch (rejection) {
    throw { tag: 'failed', val: rejection.reason };
  }
  const timestamp = String(Math.floor(Number(now) / 1000));
  // Mailgun's token is random; one derived from the request is as unique
  // and needs no source of randomness.
  const token = hexEncode(sha256(encodeUtf8(timestamp + JSON.stringify(body)))).slice(0, TOKEN_LENGTH);
  let mac;
  try {
    mac = hmac(null, 'sha256', encodeUtf8(timestamp + token));
  } catch (reason) {
    throw { tag: 'failed', val: String(reason) };
  }
  const signed = { ...body, signature: { timestamp, token, signature: hexEncode(mac) } };
  return {
    headers: [['Content-Type', 'application/json']],
    body: encodeUtf8(JSON.stringify(signed)),
  };
}

// The one event of a Mailgun body.
function decode(body) {
  const event = body['event-data'];
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw refuse(400, 'no `event-data` object');
  }
  if (typeof event.event !== 'string' || event.event === '') {
    throw refuse(400, '`event-data` has no `event`');
  }
  return {
    kind: event.event,
    rawJson: JSON.stringify(event),
    providerId: typeof event.id === 'string' && event.id !== '' ? event.id : null,
  };
}

// The JSON in `bytes`, or `undefined` for bytes that are not UTF-8 JSON.
function parseJson(bytes) {
  const text = decodeUtf8(bytes);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Strict UTF-8 (QuickJS has no TextDecoder): `undefined` for bytes that
// are not (overlong forms, surrogates, past U+10FFFF, truncated sequences).
function decodeUtf8(bytes) {
  const parts = [];
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i];
    const [length, min] =
      lead < 0x80 ? [1, 0] : lead >= 0xc2 && lead < 0xe0 ? [2, 0x80]
        : lead >= 0xe0 && lead < 0xf0 ? [3, 0x800] : lead >= 0xf0 && lead < 0xf5 ? [4, 0x10000]
          : [0, 0];
    if (length === 0 || i + length > bytes.length) return undefined;
    let point = length === 1 ? lead : lead & (0xff >> (length + 1));
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if ((next & 0xc0) !== 0x80) return undefined;
      point = (point << 6) | (next & 0x3f);
    }
    if (point < min || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return undefined;
    parts.push(String.fromCodePoint(point));
    i += length;
  }
  return parts.join('');
}

// UTF-8 of a string (QuickJS has no TextEncoder); a lone surrogate becomes
// U+FFFD, as TextEncoder makes it.
function encodeUtf8(text) {
  const bytes = [];
  for (const char of text) {
    let point = char.codePointAt(0);
    if (point >= 0xd800 && point <= 0xdfff) point = 0xfffd;
    if (point < 0x80) {
      bytes.push(point);
    } else if (point < 0x800) {
      bytes.push(0xc0 | (point >> 6), 0x80 | (point & 0x3f));
    } else if (point < 0x10000) {
      bytes.push(0xe0 | (point >> 12), 0x80 | ((point >> 6) & 0x3f), 0x80 | (point & 0x3f));
    } else {
      bytes.push(
        0xf0 | (point >> 18),
        0x80 | ((point >> 12) & 0x3f),
        0x80 | ((point >> 6) & 0x3f),
        0x80 | (point & 0x3f),
      );
    }
  }
  return Uint8Array.from(bytes);
}
