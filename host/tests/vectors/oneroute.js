#!/usr/bin/env node
// Generates OneRoute signature test vectors with a real JSON.stringify.
//
//   node host/tests/vectors/oneroute.js
//
// writes, next to this script:
//   oneroute.jsonl    one vector a line: {name, body, secret, signature,
//                     stringified, valid}. `body` is the text as sent,
//                     `signature` the hex HMAC-SHA512 of
//                     JSON.stringify(JSON.parse(original body)) exactly as
//                     OneRoute's documentation computes it, `stringified`
//                     what JSON.stringify gave for `body`, and `valid`
//                     whether a OneRoute receiver (JSON.parse, then
//                     JSON.stringify, then compare) accepts the pair.
//   js-numbers.txt    "<f64 bits as 16 hex digits> <String(x)>" a line,
//                     random doubles as Number::toString prints them.
// Deterministic: the same node gives the same files.

"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const SECRETS = ["OneRoute Secret Key", "sk_live_3f9a1c77e2b04d5c9a6f0e1d2c3b4a59", "ünïcødé 🔑"];

// The seed document's examples (003); the campaign report misses a comma
// after campaignReportUrl there, restored here.
const NEW_MESSAGE = `{
"event": "newMessage",
"message": {
"sender": {
"name": "Message Sender",
"authUser": false,
"lastActivity": "2022-01-29T07:27:52.676Z"
},
"externalId": null,
"content": "Hello World!",
"contentType": "TEXT",
"imageUrl": null,
"videoUrl": null,
"documentUrl": null,
"audioUrl": null,
"quoted_message_id": null,
"conversation_id": "bf9d96d9-e495-489a-a22a-206b0ea44d90"
},
"conversation": {
"id": "bf9d96d9-e495-489a-a22a-206b0ea44d90",
"subject": null,
"agent": null,
"customer": {
"name": "Customer name",
"email": "customer@example.com"
},
"lastMessageAt": "2022-01-29T07:27:52.793Z",
"status": "in-queue",
"country": "NG",
"read": false,
"createdAt": "2022-01-29T07:18:58.172Z",
"updatedAt": "2022-01-29T07:27:52.794Z",
"agent_id": null,
"Channel": {
"id": "8bad2edc-2973-4cec-8f33-a17c54dc0686",
"phone": null,
"identifier": "Identifier",
"medium": "WHATSAPP",
"credentials": null,
"description": "Whatsapp Channel",
"name": "Channel name",
"type": "CUSTOM",
"provider": null,
"country": "NG",
"env": "LIVE",
"status": "ACTIVE",
"webhookUrl": "https://webhook.url"
}
}
}`;

const CAMPAIGN_REPORT = `{
"event": "compaignDeliveryReport",
"message": "campaign completed.",
"campaignReportUrl": "https://api.oneroute.io/api/public/logs?page[size]=10&page[number]=1&campaign_id=campaign_id",
"conversation": {
"id": "id",
"firm_id": "firm id"
}
}`;

// Bodies as a sender might put them on the wire: formatted, escaped and
// ordered in ways JSON.stringify normalises.
const BODIES = {
  "seed newMessage (as documented, one key a line)": NEW_MESSAGE,
  "seed compaignDeliveryReport": CAMPAIGN_REPORT,
  "unicode": `{"event":"newMessage","message":{"content":"héllo wörld — 日本語 😀 ✓","sender":{"name":"Zoë Ångström"}},"escaped":"\\u00e9\\u65e5\\ud83d\\ude00","rtl":"مرحبا","combining":"e\\u0301"}`,
  "escapes": `{"s":"quote \\" backslash \\\\ slash \\/ \\b\\f\\n\\r\\t","controls":"\\u0000\\u0001\\u001f\\u007f","separators":"\\u2028\\u2029","upper":"\\u00C9\\u00e9"}`,
  "lone surrogates": `{"lone high":"a\\ud800b","lone low":"\\udfff","reversed":"\\udc00\\ud800","pair":"\\uD83D\\uDE00"}`,
  "nested": `{"a":{"b":{"c":{"d":[1,[2,[3,{"e":[]}]],{}]}}},"list":[{"z":1,"y":2},{"y":3,"z":4}],"empty":{"o":{},"a":[]}}`,
  "integer-like keys": `{"b":1,"10":2,"2":3,"01":4,"-1":5,"1.5":6,"4294967294":7,"4294967295":8,"9007199254740993":9,"a":{"3":"x","1":"y","c":"z","0":"w"},"":10," 1":11}`,
  "numbers": `{"one":1.0,"ten":10.00,"big":1e21,"almost big":1e20,"bigger":1.5E+300,"max":1.7976931348623157e308,"overflow":1e400,"neg overflow":-1e999,"negzero":-0,"negzero float":-0.0,"small":1e-7,"smallish":0.000001,"tiny":5e-324,"underflow":1e-400,"tenth":0.1,"third":0.3333333333333333,"sum":0.30000000000000004,"g":123.456e-10,"huge int":12345678901234567890,"safe":9007199254740993,"neg":-1.25E+2,"p":100.0e-2,"pi":3.141592653589793238462643383279}`,
  "duplicate keys": `{"a":1,"b":2,"a":3,"c":{"x":1,"x":{"y":2}},"b":[4]}`,
  "whitespace everywhere": ` \r\n\t{ "a" :\t[ 1 ,\r\n 2 ] ,"b"\n:\n{ } , "c" : "  spaced  value  " }\n\n `,
  "top-level array": `[ {"event":"x"}, 1.0, "two", null, true, false ]`,
  "empty object": `{}`,
  "long text": JSON.stringify({ event: "newMessage", message: { content: "lorem ipsum ".repeat(500) } }),
};

function sign(secret, text) {
  return crypto.createHmac("sha512", secret).update(text).digest("hex");
}

// What a OneRoute receiver does: JSON.parse(body), JSON.stringify, compare.
function accepts(body, secret, signature) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return false;
  }
  return sign(secret, JSON.stringify(parsed)) === signature;
}

const vectors = [];
function push(name, body, secret, signature) {
  let stringified = null;
  try {
    stringified = JSON.stringify(JSON.parse(body));
  } catch {}
  vectors.push({ name, body, secret, signature, stringified, valid: accepts(body, secret, signature) });
}

// Reverses the order of an object's keys at every level.
function reversed(value) {
  if (Array.isArray(value)) return value.map(reversed);
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).reverse()) out[key] = reversed(value[key]);
    return out;
  }
  return value;
}

let s = 0;
for (const [name, body] of Object.entries(BODIES)) {
  // The seed examples under the documented secret name, the rest rotating.
  const secret = name.startsWith("seed") ? SECRETS[0] : SECRETS[s++ % SECRETS.length];
  const signed = JSON.stringify(JSON.parse(body));
  const signature = sign(secret, signed);
  push(`${name}: as sent`, body, secret, signature);
  push(`${name}: stringified`, signed, secret, signature);
  push(`${name}: pretty-printed`, JSON.stringify(JSON.parse(body), null, 2), secret, signature);
  // Negative cases: each must change what JSON.stringify gives.
  const reordered = JSON.stringify(reversed(JSON.parse(body)));
  if (reordered !== signed) push(`${name}: keys re-ordered`, reordered, secret, signature);
  const quote = signed.indexOf('":"');
  if (quote >= 0) {
    const at = quote + 3;
    push(`${name}: re-spaced inside a string`, signed.slice(0, at) + " " + signed.slice(at), secret, signature);
  }
  // One byte changed: the last letter or digit, to another.
  const i = signed.search(/[A-Za-z0-9](?=[^A-Za-z0-9]*$)/);
  if (i >= 0) {
    const c = signed[i];
    const replacement = c === "1" ? "2" : c === "x" ? "y" : /[0-9]/.test(c) ? "1" : "x";
    push(`${name}: one byte changed`, signed.slice(0, i) + replacement + signed.slice(i + 1), secret, signature);
  }
  const flipped = (signature[0] === "0" ? "1" : "0") + signature.slice(1);
  push(`${name}: signature changed`, signed, secret, flipped);
  push(`${name}: other secret`, signed, secret + "x", signature);
}

for (const v of vectors) {
  const expectValid = !/re-ordered|re-spaced inside|one byte|signature changed|other secret/.test(v.name);
  if (v.valid !== expectValid) throw new Error(`unexpected validity for ${v.name}`);
}

const here = __dirname;
fs.writeFileSync(path.join(here, "oneroute.jsonl"), vectors.map((v) => JSON.stringify(v)).join("\n") + "\n");

// Random doubles: raw bit patterns (every exponent) and decimal-looking
// values, from a fixed-seed xorshift so the file is reproducible.
let state = 0x9e3779b97f4a7c15n;
function next64() {
  state ^= (state << 13n) & 0xffffffffffffffffn;
  state ^= state >> 7n;
  state ^= (state << 17n) & 0xffffffffffffffffn;
  return state & 0xffffffffffffffffn;
}
const view = new DataView(new ArrayBuffer(8));
const lines = [];
const emit = (x) => {
  view.setFloat64(0, x);
  lines.push(`${view.getBigUint64(0).toString(16).padStart(16, "0")} ${String(x)}`);
};
for (let n = 0; n < 4000; n++) {
  view.setBigUint64(0, next64());
  const x = view.getFloat64(0);
  if (Number.isFinite(x)) emit(x);
}
for (let n = 0; n < 2000; n++) {
  const digits = Number(next64() % 100000000000000000n);
  const exponent = Number(next64() % 60n) - 30;
  emit(Number(`${digits}e${exponent}`));
}
for (const x of [0, -0, 1, -1, 0.1, 1e21, 1e-7, 1e-6, 1e20, 5e-324, 1.7976931348623157e308, 2 ** 53, 2 ** 53 + 2, 123456789012345680000]) emit(x);
fs.writeFileSync(path.join(here, "js-numbers.txt"), lines.join("\n") + "\n");
console.log(`${vectors.length} vectors, ${lines.length} numbers`);
