"""`router` in Python: sends each incoming message to a team by its first
word, exactly as the Rust example does (plugins/router).

`sales…` goes to `sales`, `support…` or `help…` to `support`, anything else
to `default`. Each destination keeps a running count in the plugin's KV
namespace, and the reply is `{"route": D, "count": C}`.
"""

import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Event,
    FlowEvent,
    Payload_Flow,
    Payload_FlowCall,
    Payload_MessageReceived,
    Reply,
)

# Unicode White_Space, which Rust's `split_whitespace` and `trim` use;
# Python's `str.split()` and `str.strip()` also take U+001C..U+001F.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
WORD_SEPARATORS = re.compile("[" + WHITE_SPACE + "]+")
U64_MAX = 2**64 - 1
U64_TEXT = re.compile(r"\+?[0-9]+")

# Counts kept in the instance when the KV store is unavailable (not granted,
# or failing): routing should not stop because counting cannot be durable.
fallback_counts: dict[str, int] = {}


class WitWorld(wit_world.WitWorld):
    def handle(self, e: Event) -> Reply | None:
        payload = e.payload
        if isinstance(payload, Payload_MessageReceived):
            text = payload.value.text
        elif isinstance(payload, (Payload_Flow, Payload_FlowCall)):
            # Flows reach the router too when a route carries them.
            text = input_text(payload.value)
        else:
            return None
        dest = destination(text or "")
        body = '{"route":%s,"count":%d}' % (json.dumps(dest), count(dest))
        return Reply(status=200, json=body)


def input_text(flow: FlowEvent) -> str | None:
    return next((value for key, value in flow.variables if key == "input"), None)


def destination(text: str) -> str:
    words = [word for word in WORD_SEPARATORS.split(text) if word]
    first = words[0].lower() if words else ""
    if first.startswith("sales"):
        return "sales"
    if first.startswith("support") or first.startswith("help"):
        return "support"
    return "default"


def count(dest: str) -> int:
    """Increments and returns this destination's count."""
    try:
        return count_in_kv(dest)
    except Err:
        fallback_counts[dest] = fallback_counts.get(dest, 0) + 1
        return fallback_counts[dest]


def count_in_kv(dest: str) -> int:
    key = f"count/{dest}"
    # A value that is not a decimal number was not written by us; start over
    # rather than fail every message that follows.
    previous = parse_u64(host.kv_get(key))
    count = previous + 1
    host.kv_set(key, str(count).encode())
    return count


def parse_u64(value: bytes | None) -> int:
    """Rust's `trim().parse::<u64>()` of the stored text, 0 if it fails."""
    if value is None:
        return 0
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    text = text.strip(WHITE_SPACE)
    if not U64_TEXT.fullmatch(text):
        return 0
    number = int(text)
    return number if number <= U64_MAX else 0
