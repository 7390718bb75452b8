"""`{{name}}`: a wirehook plugin. wirehook calls `handle` once per event of
each route that names this plugin; see wit/plugin.wit for every type."""

import json

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Event, Payload_MessageReceived, Reply


class WitWorld(wit_world.WitWorld):
    def handle(self, e: Event) -> Reply | None:
        if isinstance(e.payload, Payload_MessageReceived):
            host.log(host.Level.INFO, f"message from {e.payload.value.contact.phone}")
        # On a `respond` route this reply is the HTTP response. To fail the
        # event instead, raise componentize_py_types.Err(Failure_Retry("why")).
        body = json.dumps({"kind": e.kind, "plugin": "{{name}}"}, separators=(",", ":"))
        return Reply(status=200, json=body)
