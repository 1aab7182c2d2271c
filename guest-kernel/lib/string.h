// Freestanding string helpers (compile hosted too, for the unit tests).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace lib {

size_t StrLen(const char* s);
// Compares s[0..len) with the NUL-terminated word.
bool EqualN(const char* s, size_t len, const char* word);
// Parses decimal or 0x-hex digits s[0..len); false on empty, junk or overflow.
bool ParseU64(const char* s, size_t len, uint64_t* out);

}  // namespace lib
