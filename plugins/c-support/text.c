// See text.h.
#include "text.h"

#include <string.h>

// Decodes the character at `text.ptr[i]`; returns its length in bytes.
static size_t decode(text_t text, size_t i, uint32_t *cp) {
    const uint8_t *s = text.ptr + i;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
          ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
    return 4;
}

// Unicode's White_Space property, which Rust's `char::is_whitespace` uses.
static bool is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

text_t text_trim(text_t text) {
    size_t start = text.len, end = 0;
    for (size_t i = 0; i < text.len;) {
        uint32_t cp;
        size_t n = decode(text, i, &cp);
        if (!is_white_space(cp)) {
            if (start == text.len) start = i;
            end = i + n;
        }
        i += n;
    }
    if (start == text.len) return (text_t){text.ptr, 0};
    return (text_t){text.ptr + start, end - start};
}

text_t text_first_word(text_t text) {
    size_t i = 0, start;
    uint32_t cp;
    while (i < text.len) {
        size_t n = decode(text, i, &cp);
        if (!is_white_space(cp)) break;
        i += n;
    }
    start = i;
    while (i < text.len) {
        size_t n = decode(text, i, &cp);
        if (is_white_space(cp)) break;
        i += n;
    }
    return (text_t){text.ptr + start, i - start};
}

bool text_starts_with_ignoring_case(text_t text, const char *prefix) {
    size_t n = strlen(prefix);
    if (text.len < n) return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = text.ptr[i];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c != (uint8_t)prefix[i]) return false;
    }
    return true;
}

bool text_equals(text_t text, const char *other) {
    return strlen(other) == text.len && memcmp(text.ptr, other, text.len) == 0;
}

// The escape of byte `c` (NULL when it is written as is).
static const char *short_escape(uint8_t c) {
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: return NULL;
    }
}

size_t text_json_len(text_t text) {
    size_t n = 2;
    for (size_t i = 0; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        n += short_escape(c) ? 2 : c < 0x20 ? 6 : 1;
    }
    return n;
}

size_t text_json_write(text_t text, char *out) {
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = '"';
    for (size_t i = 0; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        const char *escape = short_escape(c);
        if (escape) {
            *p++ = escape[0];
            *p++ = escape[1];
        } else if (c < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 0xf];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    return (size_t)(p - out);
}
