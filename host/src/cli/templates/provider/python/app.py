"""`{{name}}`: a wirehook provider plugin. A route with `provider =
"plugin:{{name}}"` runs `verify` on each request it receives; see
wit/provider.wit for every type.

As written it checks `X-Signature`, the hex HMAC-SHA256 of the body with
the route's secret, and decodes a JSON object into one event of its
`type`. The secret stays with wirehook: `keyed` computes and compares the
MAC."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import keyed
from wit_world.imports.provider_types import (
    DecodedEvent,
    HandshakeAnswer,
    Hash,
    Rejection,
    Request,
    SignError_Failed,
    Signed,
)


class WitWorld(wit_world.WitWorld):
    def verify(self, req: Request) -> list[DecodedEvent]:
        signature = next((value for name, value in req.headers if name == "x-signature"), None)
        if signature is None:
            raise Err(Rejection(401, "missing `X-Signature` header"))
        try:
            valid = keyed.verify_mac(None, Hash.SHA256, req.body, keyed.hex_decode(signature))
        except Err as e:
            raise Err(Rejection(401, str(e.value)))
        if not valid:
            raise Err(Rejection(401, "signature mismatch"))
        return [decode(req.body)]

    def handshake(self, req: Request) -> HandshakeAnswer | None:
        # No GET handshake: wirehook answers a GET with 405.
        return None

    def sign(self, payload: bytes, now_ms: int, public_url: str | None) -> Signed:
        """`wirehook sign --provider plugin:{{name}}`: the request verify accepts."""
        try:
            mac = keyed.hmac(None, Hash.SHA256, payload)
        except Err as e:
            raise Err(SignError_Failed(str(e.value)))
        headers = [("Content-Type", "application/json"), ("X-Signature", keyed.hex_encode(mac))]
        return Signed(headers, payload)


def decode(body: bytes) -> DecodedEvent:
    try:
        text = body.decode()
        value = json.loads(text)
    except ValueError:  # not UTF-8, or not JSON
        raise Err(Rejection(400, "the body is not JSON"))
    fields = value if isinstance(value, dict) else {}
    kind = fields.get("type")
    provider_id = fields.get("id")
    return DecodedEvent(
        kind if isinstance(kind, str) else "event",
        text,
        provider_id if isinstance(provider_id, str) else None,
    )
