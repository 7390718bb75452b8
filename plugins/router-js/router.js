// `router` in JavaScript: sends each incoming message to a team by its
// first word, exactly as the Rust example does (plugins/router).
//
// `sales…` goes to `sales`, `support…` or `help…` to `support`, anything
// else to `default`. Each destination keeps a running count in the plugin's
// KV namespace, and the reply is `{"route": D, "count": C}`.

import { kvGet, kvSet } from 'wirehook:plugin/host@0.1.0';

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
  kvSet(key, new TextEncoder().encode(next.toString()));
  return next;
}

// Rust's `trim().parse::<u64>()` of the stored bytes, 0n if it fails.
function parseU64(bytes) {
  if (bytes === undefined || bytes === null) return 0n;
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return 0n;
  }
  text = text.replace(EDGE_SPACE, '');
  if (!/^\+?[0-9]+$/.test(text)) return 0n;
  const number = BigInt(text);
  return number <= U64_MAX ? number : 0n;
}
