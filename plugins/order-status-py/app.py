"""`order-status` in Python: answers a flow engine's "what is the status of
order N?" exactly as the Rust example does (plugins/order-status).

A goflow "Call Webhook" step reaches this plugin as a `flow-call`; the reply
`{"number": N, "status": S}` becomes `@webhook` in the flow. A shop's order
is answered the same way, its status read from the order itself.
"""

from json.encoder import encode_basestring

import wit_world
from wit_world.imports.types import (
    Event,
    FlowEvent,
    Order,
    Payload_Flow,
    Payload_FlowCall,
    Payload_Order,
    Reply,
)

# Rust's `str::trim` strips Unicode White_Space; Python's `str.strip()` also
# strips the ASCII separators U+001C..U+001F, so name the set to match.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

STATUSES = {"CU001": "Shipped", "CU002": "Pending", "CU003": "Cancelled"}


class WitWorld(wit_world.WitWorld):
    def handle(self, e: Event) -> Reply | None:
        # A plain `flow` carries the same variables; answering it lets a
        # route use this plugin in either mode.
        if isinstance(e.payload, Payload_Order):
            number = e.payload.value.number or ""
            status = status_of_order(e.payload.value)
        elif isinstance(e.payload, (Payload_FlowCall, Payload_Flow)):
            number = order_number(e.payload.value)
            status = STATUSES.get(number, "Unknown")
        else:
            return None
        # serde_json's output: compact, non-ASCII as is. Two strings need
        # no general encoder (a fifth of the call's time); this is the one
        # json.dumps uses for them.
        body = '{"number":%s,"status":%s}' % (encode_basestring(number), encode_basestring(status))
        return Reply(status=200, json=body)


def order_number(flow: FlowEvent) -> str:
    """The goflow result `order` if the flow collected one, else the text
    the contact just typed (the first of each, in one pass)."""
    order = text = None
    for key, value in flow.variables:
        if key == "order" and order is None:
            order = value.strip(WHITE_SPACE)
        elif key == "input" and text is None:
            text = value.strip(WHITE_SPACE)
    return order or text or ""


def status_of_order(order: Order) -> str:
    """A shop's order by its own statuses: fulfilled is shipped, refunded or
    voided cancelled, anything else pending."""
    if order.fulfillment_status == "fulfilled":
        return "Shipped"
    if order.financial_status in ("refunded", "voided"):
        return "Cancelled"
    return "Pending"
