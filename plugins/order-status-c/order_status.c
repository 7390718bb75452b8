// `order-status` in C: answers a flow engine's "what is the status of order
// N?" exactly as the Rust example does (plugins/order-status).
//
// A goflow "Call Webhook" step reaches this plugin as a `flow-call`; the
// reply `{"number": N, "status": S}` becomes `@webhook` in the flow. A
// shop's order is answered the same way, its status read from the order.

#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "text.h"

static text_t view(const plugin_string_t *s) { return (text_t){s->ptr, s->len}; }

// The value of the flow's first variable called `name`, if any.
static const plugin_string_t *variable(const wirehook_plugin_types_flow_event_t *flow,
                                       const char *name) {
    for (size_t i = 0; i < flow->variables.len; i++) {
        if (text_equals(view(&flow->variables.ptr[i].f0), name)) return &flow->variables.ptr[i].f1;
    }
    return NULL;
}

// The goflow result `order` if the flow collected one, else the text the
// contact just typed.
static text_t order_number(const wirehook_plugin_types_flow_event_t *flow) {
    static const char *const names[] = {"order", "input"};
    for (size_t i = 0; i < 2; i++) {
        const plugin_string_t *value = variable(flow, names[i]);
        if (value == NULL) continue;
        text_t trimmed = text_trim(view(value));
        if (trimmed.len > 0) return trimmed;
    }
    return (text_t){(const uint8_t *)"", 0};
}

static const char *status_of(text_t number) {
    if (text_equals(number, "CU001")) return "Shipped";
    if (text_equals(number, "CU002")) return "Pending";
    if (text_equals(number, "CU003")) return "Cancelled";
    return "Unknown";
}

// Whether the optional string is present and exactly `name`.
static bool is(const plugin_option_string_t *status, const char *name) {
    return status->is_some && text_equals(view(&status->val), name);
}

// A shop's order by its own statuses: fulfilled is shipped, refunded or
// voided cancelled, anything else pending.
static const char *status_of_order(const wirehook_plugin_types_order_t *order) {
    if (is(&order->fulfillment_status, "fulfilled")) return "Shipped";
    if (is(&order->financial_status, "refunded") || is(&order->financial_status, "voided")) return "Cancelled";
    return "Pending";
}

bool exports_plugin_handle(plugin_event_t *e, plugin_option_reply_t *ret, plugin_failure_t *err) {
    (void)err;
    ret->is_some = false;
    uint8_t tag = e->payload.tag;
    text_t number = {(const uint8_t *)"", 0};
    const char *status = NULL;
    // A plain `flow` carries the same variables; answering it lets a route
    // use this plugin in either mode.
    if (tag == WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW_CALL || tag == WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW) {
        const wirehook_plugin_types_flow_event_t *flow =
            tag == WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW ? &e->payload.val.flow : &e->payload.val.flow_call;
        number = order_number(flow);
        status = status_of(number);
    } else if (tag == WIREHOOK_PLUGIN_TYPES_PAYLOAD_ORDER) {
        const wirehook_plugin_types_order_t *order = &e->payload.val.order;
        if (order->number.is_some) number = view(&order->number.val);
        status = status_of_order(order);
    }
    if (status != NULL) {
        // {"number":N,"status":"S"}, keys in serde_json's (sorted) order.
        size_t len = strlen("{\"number\":,\"status\":\"\"}") + text_json_len(number) + strlen(status);
        char *json = malloc(len);
        if (json == NULL) abort();
        char *p = json;
        memcpy(p, "{\"number\":", 10);
        p += 10;
        p += text_json_write(number, p);
        memcpy(p, ",\"status\":\"", 11);
        p += 11;
        memcpy(p, status, strlen(status));
        p += strlen(status);
        memcpy(p, "\"}", 2);
        // The reply is freed after the host has copied it (post-return).
        ret->is_some = true;
        ret->val.status = 200;
        ret->val.json = (plugin_string_t){(uint8_t *)json, len};
    }
    // The event is ours to free; the reply borrows nothing from it.
    plugin_event_free(e);
    return true;
}
