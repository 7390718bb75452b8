// `order-status` in JavaScript: answers a flow engine's "what is the status
// of order N?" exactly as the Rust example does (plugins/order-status).
//
// A goflow "Call Webhook" step reaches this plugin as a `flow-call`; the
// reply `{"number": N, "status": S}` becomes `@webhook` in the flow. A
// shop's order is answered the same way, its status read from the order.

// Rust's `str::trim` strips Unicode White_Space; JavaScript's `trim()` also
// strips U+FEFF but not U+0085, so name the set to match.
const EDGE_SPACE =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

const STATUSES = { CU001: 'Shipped', CU002: 'Pending', CU003: 'Cancelled' };

export function handle(e) {
  if (e.payload.tag === 'order') {
    const order = e.payload.val;
    const number = order.number ?? '';
    // JSON.stringify escapes exactly as serde_json does.
    return { status: 200, json: JSON.stringify({ number, status: statusOfOrder(order) }) };
  }
  // A plain `flow` carries the same variables; answering it lets a route
  // use this plugin in either mode.
  if (e.payload.tag !== 'flow-call' && e.payload.tag !== 'flow') {
    return undefined;
  }
  const number = orderNumber(e.payload.val);
  const status = Object.hasOwn(STATUSES, number) ? STATUSES[number] : 'Unknown';
  // JSON.stringify escapes exactly as serde_json does.
  return { status: 200, json: JSON.stringify({ number, status }) };
}

// The goflow result `order` if the flow collected one, else the text the
// contact just typed.
function orderNumber(flow) {
  for (const name of ['order', 'input']) {
    const value = variable(flow, name);
    if (value !== undefined && value.replace(EDGE_SPACE, '') !== '') {
      return value.replace(EDGE_SPACE, '');
    }
  }
  return '';
}

function variable(flow, name) {
  const found = flow.variables.find(([key]) => key === name);
  return found === undefined ? undefined : found[1];
}

// A shop's order by its own statuses: fulfilled is shipped, refunded or
// voided cancelled, anything else pending.
function statusOfOrder(order) {
  if (order.fulfillmentStatus === 'fulfilled') {
    return 'Shipped';
  }
  if (order.financialStatus === 'refunded' || order.financialStatus === 'voided') {
    return 'Cancelled';
  }
  return 'Pending';
}
