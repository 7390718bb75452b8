// `router` in C: sends each incoming message to a team by its first word,
// exactly as the Rust example does (plugins/router).
//
// `sales…` goes to `sales`, `support…` or `help…` to `support`, anything
// else to `default`. Each destination keeps a running count in the plugin's
// KV namespace, and the reply is `{"route": D, "count": C}`.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "text.h"

static text_t view(const plugin_string_t *s) { return (text_t){s->ptr, s->len}; }

static plugin_string_t borrow(const char *s) { return (plugin_string_t){(uint8_t *)s, strlen(s)}; }

// The destinations, and counts kept in the instance when the KV store is
// unavailable (not granted, or failing): routing should not stop because
// counting cannot be durable.
static const char *const DESTINATIONS[] = {"sales", "support", "default"};
static uint64_t fallback_counts[3];

// Rust lowercases the whole first word before comparing; no character
// outside ASCII lowercases to the ASCII letters of these prefixes, so
// ignoring ASCII case is the same test.
static size_t destination(text_t text) {
    text_t first = text_first_word(text);
    if (text_starts_with_ignoring_case(first, "sales")) return 0;
    if (text_starts_with_ignoring_case(first, "support") || text_starts_with_ignoring_case(first, "help"))
        return 1;
    return 2;
}

// Rust's `trim().parse::<u64>()` of a stored value, 0 when it fails: a
// value that is not a decimal number was not written by us; start over
// rather than fail every message that follows.
static uint64_t parse_u64(const plugin_list_u8_t *bytes) {
    text_t text = text_trim((text_t){bytes->ptr, bytes->len});
    size_t i = 0;
    uint64_t n = 0;
    if (i < text.len && text.ptr[i] == '+') i++;
    if (i == text.len) return 0;
    for (; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        if (c < '0' || c > '9') return 0;
        if (n > (UINT64_MAX - (c - '0')) / 10) return 0;
        n = n * 10 + (c - '0');
    }
    return n;
}

// Increments the destination's count in KV; false if KV failed.
static bool count_in_kv(size_t dest, uint64_t *count) {
    char key_text[32];
    snprintf(key_text, sizeof key_text, "count/%s", DESTINATIONS[dest]);
    plugin_string_t key = borrow(key_text), err;
    plugin_option_list_u8_t previous;
    if (!wirehook_plugin_host_kv_get(&key, &previous, &err)) {
        plugin_string_free(&err);
        return false;
    }
    uint64_t next = (previous.is_some ? parse_u64(&previous.val) : 0) + 1;
    plugin_option_list_u8_free(&previous);
    char value_text[24];
    int len = snprintf(value_text, sizeof value_text, "%" PRIu64, next);
    plugin_list_u8_t value = {(uint8_t *)value_text, (size_t)len};
    if (!wirehook_plugin_host_kv_set(&key, &value, &err)) {
        plugin_string_free(&err);
        return false;
    }
    *count = next;
    return true;
}

static uint64_t count(size_t dest) {
    uint64_t n;
    if (count_in_kv(dest, &n)) return n;
    return ++fallback_counts[dest];
}

bool exports_plugin_handle(plugin_event_t *e, plugin_option_reply_t *ret, plugin_failure_t *err) {
    (void)err;
    ret->is_some = false;
    const plugin_string_t *text = NULL;
    bool routed = true;
    switch (e->payload.tag) {
    case WIREHOOK_PLUGIN_TYPES_PAYLOAD_MESSAGE_RECEIVED:
        if (e->payload.val.message_received.text.is_some) text = &e->payload.val.message_received.text.val;
        break;
    // Flows reach the router too when a route carries them.
    case WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW:
    case WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW_CALL: {
        const wirehook_plugin_types_flow_event_t *flow = e->payload.tag == WIREHOOK_PLUGIN_TYPES_PAYLOAD_FLOW
                                                             ? &e->payload.val.flow
                                                             : &e->payload.val.flow_call;
        for (size_t i = 0; i < flow->variables.len; i++) {
            if (text_equals(view(&flow->variables.ptr[i].f0), "input")) {
                text = &flow->variables.ptr[i].f1;
                break;
            }
        }
        break;
    }
    default:
        routed = false;
    }
    if (routed) {
        size_t dest = destination(text ? view(text) : (text_t){(const uint8_t *)"", 0});
        char *json = malloc(64);
        if (json == NULL) abort();
        int len = snprintf(json, 64, "{\"route\":\"%s\",\"count\":%" PRIu64 "}", DESTINATIONS[dest], count(dest));
        // The reply is freed after the host has copied it (post-return).
        ret->is_some = true;
        ret->val.status = 200;
        ret->val.json = (plugin_string_t){(uint8_t *)json, (size_t)len};
    }
    plugin_event_free(e);
    return true;
}
