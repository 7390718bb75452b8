// `router` in JavaScript: sends each incoming message to a team by its
// first word, exactly as the Rust example does (plugins/router).
//
// `sales…` goes to `sales`, `support…` or `help…` to `support`, anything
// else to `default`. Each destination keeps a running count in the plugin's
// KV namespace, and the reply is `{"route": D, "count": C}`.

import { kvGet, kvSet } from 'wirehook:plugin/host@0.2.0';

// Unicode White_Space, which Rust's `split_whitespace` and `trim` use;
// JavaScript's `\s` also takes U+FEFF and leaves out U+0085.
const SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WORD_SEPARATORS = new RegExp(`[${SPACE}]+`);
const EDGE_SPACE = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g');
const U64_MAX = 2n ** 64n - 1n;

// Counts kept in the instance when the KV store is unavailable (not
// granted, or failing): routing should not stop because counting cannot be
// durable.
const fallbackCounts = new Map();

export function handle(e) {
  let text;
  switch (e.payload.tag) {
    case 'message-received':
      text = e.payload.val.text;
      break;
    // Flows reach the router too when a route carries them.
    case 'flow':
    case 'flow-call':
      text = e.payload.val.variables.find(([key]) => key === 'input')?.[1];
      break;
    default:
      return undefined;
  }
  const dest = destination(text ?? '');
  return { status: 200, json: `{"route":${JSON.stringify(dest)},"count":${count(dest)}}` };
}

function destination(text) {
  const first = (text.split(WORD_SEPARATORS).find((word) => word !== '') ?? '').toLowerCase();
  if (first.startsWith('sales')) return 'sales';
  if (first.startsWith('support') || first.startsWith('help')) return 'support';
  return 'default';
}

// Increments and returns this destination's count.
function count(dest) {
  try {
    return countInKv(dest);
  } catch {
    const next = (fallbackCounts.get(dest) ?? 0n) + 1n;
    fallbackCounts.set(dest, next);
    return next;
  }
}

function countInKv(dest) {
  const key = `count/${dest}`;
  // A value that is not a decimal number was not written by us; start over
  // rather than fail every message that follows.
  const next = parseU64(kvGet(key)) + 1n;
  // Decimal digits are ASCII: one byte each.
  kvSet(key, Uint8Array.from(next.toString(), (digit) => digit.charCodeAt(0)));
  return next;
}

// Rust's `trim().parse::<u64>()` of the stored bytes, 0n if it fails.
function parseU64(bytes) {
  if (bytes === undefined || bytes === null) return 0n;
  const text = decodeUtf8(bytes)?.replace(EDGE_SPACE, '');
  if (text === undefined) return 0n;
  if (!/^\+?[0-9]+$/.test(text)) return 0n;
  const number = BigInt(text);
  return number <= U64_MAX ? number : 0n;
}

// Strict UTF-8, as Rust's `str::from_utf8`: `undefined` for bytes that are
// not (overlong forms, surrogates, past U+10FFFF, truncated sequences).
// QuickJS has no TextDecoder.
function decodeUtf8(bytes) {
  let text = '';
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
    text += String.fromCodePoint(point);
    i += length;
  }
  return text;
}
