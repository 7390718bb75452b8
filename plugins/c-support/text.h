// Text helpers the C example plugins share, written to match what the Rust
// examples get from the standard library and serde_json: Unicode White_Space
// (Rust's `trim` and `split_whitespace`) and JSON string escaping.
#ifndef WIREHOOK_TEXT_H
#define WIREHOOK_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A view of UTF-8 text; WIT strings are always valid UTF-8.
typedef struct {
    const uint8_t *ptr;
    size_t len;
} text_t;

// The text without leading and trailing White_Space, as Rust's `str::trim`.
text_t text_trim(text_t text);

// The first run of non-White_Space characters (empty if none), as the
// first item of Rust's `split_whitespace`.
text_t text_first_word(text_t text);

// Whether `text` starts with the ASCII `prefix`, ignoring ASCII case.
bool text_starts_with_ignoring_case(text_t text, const char *prefix);

// Whether `text` is exactly the NUL-terminated `other`.
bool text_equals(text_t text, const char *other);

// Writes `text` as a JSON string, quotes included, escaped as serde_json
// and JSON.stringify do: `"` and `\`, the short forms \b \f \n \r \t, other
// controls as \u00XX in lowercase hex, everything else as is. `out` must
// have room for text_json_len(text) bytes; returns the bytes written.
size_t text_json_write(text_t text, char *out);

// Bytes text_json_write writes for `text`.
size_t text_json_len(text_t text);

#endif
