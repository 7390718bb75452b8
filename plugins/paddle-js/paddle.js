// `paddle-js`: a provider plugin for Paddle Billing's webhooks, in
// JavaScript.
//
// Paddle POSTs one event as JSON, signed in a header:
//
//   Paddle-Signature: ts=1700000000;h1=…hex…
//
// `h1` is the hex HMAC-SHA256 of `<ts>:<raw body>` with the notification
// destination's secret key. The signature covers the body, so a captured
// one proves nothing for any other event. While a secret key rotates, the
// header lists several `h1`: any one matching accepts. The host computes
// and compares each (`keyed.verify-mac`, constant time): this plugin never
// holds the key. A `ts` (seconds) more than five minutes from now, either
// way, is refused.
//
// The event is the body as it came, of kind `event_type`
// (`transaction.completed`, `subscription.updated`…) with its id
// `event_id` (`evt_…`, the same each time Paddle sends it again).
//
// Route: `provider = "plugin:paddle-js"`, `secret` = the destination's
// secret key (Paddle: Developer tools → Notifications → the destination →
// Secret key, `pdl_ntfset_…`).

import { hexDecode, hexEncode, hmac, nowMs, verifyMac } from 'wirehook:plugin/keyed@0.2.0';

// How far `ts` may be from now.
const TOLERANCE_MS = 5 * 60 * 1000;

// Paddle lists one `h1`, two while a key rotates; a header with more is
// not Paddle's, and each costs the host an HMAC of the body.
const MAX_SIGNATURES = 4;

function refuse(status, reason) {
  return { status, reason };
}

export function verify(req) {
  const contentType = header(req, 'content-type');
  if (contentType !== undefined && !isJson(contentType)) {
    throw refuse(415, 'Paddle sends JSON');
  }
  const proof = header(req, 'paddle-signature');
  if (proof === undefined) {
    throw refuse(401, 'missing `Paddle-Signature` header');
  }
  const { ts, signatures } = parseSignature(proof);
  if (Math.abs(Number(nowMs()) - Number(ts) * 1000) > TOLERANCE_MS) {
    throw refuse(401, "`ts` outside the five minutes' tolerance");
  }
  const message = signedBytes(ts, req.body);
  let valid = false;
  for (const expected of signatures) {
    try {
      valid = verifyMac(null, 'sha256', message, expected);
    } catch (reason) {
      throw refuse(401, String(reason));
    }
    if (valid) break;
  }
  if (!valid) {
    throw refuse(401, 'signature mismatch');
  }
  return [decode(req.body)];
}

// Paddle makes no GET handshake: wirehook answers a GET with 405.
export function handshake(_req) {
  return null;
}

// The request Paddle would send at `now` for `payload`, a whole Paddle
// event, sent as it is.
export function sign(payload, now, _publicUrl) {
  try {
    decode(payload);
  } catch (rejection) {
    throw { tag: 'failed', val: rejection.reason };
  }
  const ts = String(Math.floor(Number(now) / 1000));
  let mac;
  try {
    mac = hmac(null, 'sha256', signedBytes(ts, payload));
  } catch (reason) {
    throw { tag: 'failed', val: String(reason) };
  }
  return {
    headers: [
      ['Content-Type', 'application/json'],
      ['Paddle-Signature', `ts=${ts};h1=${hexEncode(mac)}`],
    ],
    body: payload,
  };
}

// The first value of the header `name` (lower case), or `undefined`.
function header(req, name) {
  return req.headers.find(([key]) => key === name)?.[1];
}

// `application/json` or a `+json` type, parameters aside.
function isJson(contentType) {
  const essence = contentType.split(';')[0].trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json');
}

// `ts` and the decoded `h1` values of a `Paddle-Signature`: exactly one
// `ts` of digits and one or more `h1` of 64 hex digits. Other keys are
// skipped, for schemes Paddle may add.
function parseSignature(value) {
  let ts;
  const signatures = [];
  for (const part of value.split(';')) {
    const at = part.indexOf('=');
    if (at < 0) {
      throw refuse(401, 'malformed `Paddle-Signature`');
    }
    const key = part.slice(0, at).trim();
    const text = part.slice(at + 1).trim();
    if (key === 'ts') {
      if (ts !== undefined) {
        throw refuse(401, 'more than one `ts` in `Paddle-Signature`');
      }
      if (!/^[0-9]{1,12}$/.test(text)) {
        throw refuse(401, '`ts` in `Paddle-Signature` is not Unix seconds');
      }
      ts = text;
    } else if (key === 'h1') {
      if (!/^[0-9a-fA-F]{64}$/.test(text)) {
        throw refuse(401, '`h1` in `Paddle-Signature` is not a hex HMAC-SHA256');
      }
      signatures.push(hexDecode(text));
    }
  }
  if (ts === undefined) {
    throw refuse(401, 'no `ts` in `Paddle-Signature`');
  }
  if (signatures.length === 0) {
    throw refuse(401, 'no `h1` in `Paddle-Signature`');
  }
  if (signatures.length > MAX_SIGNATURES) {
    throw refuse(401, 'too many `h1` in `Paddle-Signature`');
  }
  return { ts, signatures };
}

// What `h1` is the MAC of: `<ts>:` then the body's bytes as received.
function signedBytes(ts, body) {
  const prefix = encodeUtf8(`${ts}:`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix, 0);
  message.set(body, prefix.length);
  return message;
}

// The one event of a Paddle body: the body itself, which must be a JSON
// object with a non-empty `event_type` and `event_id`.
function decode(bytes) {
  const text = decodeUtf8(bytes);
  const body = text === undefined ? undefined : parseJsonText(text);
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw refuse(400, 'the body is not a JSON object');
  }
  if (typeof body.event_type !== 'string' || body.event_type === '') {
    throw refuse(400, 'the body has no `event_type`');
  }
  if (typeof body.event_id !== 'string' || body.event_id === '') {
    throw refuse(400, 'the body has no `event_id`');
  }
  return { kind: body.event_type, rawJson: text, providerId: body.event_id };
}

function parseJsonText(text) {
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
