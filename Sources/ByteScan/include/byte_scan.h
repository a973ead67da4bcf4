#ifndef COMPASS_BYTE_SCAN_H
#define COMPASS_BYTE_SCAN_H
// Scans over the bytes of JSON text, its string escaping and hex digits, sixteen at a time with
// SSE2 (every x86-64 processor has it) or eight at a time in a word elsewhere. Inline: the Swift
// callers take them into their own code.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Where a run of a string literal's plain bytes ends, and whether all of them are ASCII.
typedef struct {
    size_t end;
    bool ascii;
} compass_plain_run;

// The high bit of each byte of `word` that is a quote, a backslash or below 0x20, from the first
// such byte on (a borrow may mark a later byte, never an earlier one); zero when there is none.
static inline uint64_t compass_specials(uint64_t word) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = word ^ (ones * 0x22), backslash = word ^ (ones * 0x5C);
    return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((word - ones * 0x20) & ~word)) & highs;
}

// From `start` in the `count` bytes at `bytes`: the first quote, backslash or control character
// (`count` when there is none) and whether the bytes before it are ASCII. Eight bytes at a time in
// a word, the last up to seven one by one; reads nothing at or past `count`.
static inline compass_plain_run compass_plain_run_by_words(const uint8_t *bytes, size_t start, size_t count) {
    size_t index = start;
    uint64_t high = 0;
    for (; index + 8 <= count; index += 8) {
        uint64_t word;
        memcpy(&word, bytes + index, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        uint64_t found = compass_specials(word);
        if (found != 0) {
            unsigned plain = (unsigned)__builtin_ctzll(found) >> 3;
            if (plain != 0) high |= word & (~0ULL >> (64 - plain * 8));
            return (compass_plain_run){index + plain, (high & 0x8080808080808080ULL) == 0};
        }
        high |= word;
    }
    bool ascii = (high & 0x8080808080808080ULL) == 0;
    for (; index < count; index++) {
        uint8_t byte = bytes[index];
        if (byte == 0x22 || byte == 0x5C || byte < 0x20) break;
        if (byte >= 0x80) ascii = false;
    }
    return (compass_plain_run){index, ascii};
}

// The same, sixteen bytes at a time where SSE2 is, then by words.
static inline compass_plain_run compass_plain_run_from(const uint8_t *bytes, size_t start, size_t count) {
#if defined(__SSE2__)
    size_t index = start;
    unsigned high = 0;
    const __m128i quote = _mm_set1_epi8(0x22), backslash = _mm_set1_epi8(0x5C), control = _mm_set1_epi8(0x1F);
    for (; index + 16 <= count; index += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(const void *)(bytes + index));
        // A byte at most 0x1F is its own minimum with 0x1F (an unsigned comparison).
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)),
                                       _mm_cmpeq_epi8(_mm_min_epu8(chunk, control), chunk));
        unsigned found = (unsigned)_mm_movemask_epi8(special);
        unsigned top = (unsigned)_mm_movemask_epi8(chunk);
        if (found != 0) {
            high |= top & ((1u << __builtin_ctz(found)) - 1);
            return (compass_plain_run){index + (size_t)__builtin_ctz(found), high == 0};
        }
        high |= top;
    }
    compass_plain_run rest = compass_plain_run_by_words(bytes, index, count);
    rest.ascii = rest.ascii && high == 0;
    return rest;
#else
    return compass_plain_run_by_words(bytes, start, count);
#endif
}

// `byte` escaped as RFC 8259 writes it inside a string literal, at `out`: a quote, a backslash,
// a line feed, a carriage return and a tab as `\"`, `\\`, `\n`, `\r`, `\t`, any other byte below
// 0x20 as `\u00XX`, every other byte as it is. Returns how many bytes it wrote (1, 2 or 6).
static inline size_t compass_escape_byte(uint8_t byte, uint8_t *out) {
    static const char hex[] = "0123456789abcdef";
    out[0] = 0x5C;
    switch (byte) {
    case 0x22: case 0x5C: out[1] = byte; return 2;
    case 0x0A: out[1] = 'n'; return 2;
    case 0x0D: out[1] = 'r'; return 2;
    case 0x09: out[1] = 't'; return 2;
    default:
        if (byte >= 0x20) {
            out[0] = byte;
            return 1;
        }
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = (uint8_t)hex[byte >> 4];
        out[5] = (uint8_t)hex[byte & 15];
        return 6;
    }
}

// The `count` bytes at `source` escaped (as compass_escape_byte does each) at `out`; returns how
// many bytes that is. `out` has room for twice `count` (six times with a control character) and
// 16 more: a run is stored sixteen or eight bytes at a time, up to 15 past the escaped text's end.
// Sixteen bytes at a time with SSE2 while 32 remain (a run after a quote is loaded from `source`
// again, up to 15 bytes further on), then eight in a word on a little-endian machine, then one by
// one. A chunk with a control character is escaped byte by byte; otherwise it is stored from its
// start and again from each quote or backslash on, a backslash written before it (in JSON text
// quoted again there is a quote every few bytes).
static inline size_t compass_escape(const uint8_t *source, size_t count, uint8_t *out) {
    size_t index = 0, at = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8(0x22), backslash = _mm_set1_epi8(0x5C), control = _mm_set1_epi8(0x1F);
    for (; index + 32 <= count; index += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(const void *)(source + index));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(chunk, control), chunk)) != 0) {
            for (size_t offset = 0; offset < 16; offset++) at += compass_escape_byte(source[index + offset], out + at);
            continue;
        }
        unsigned marks = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)));
        _mm_storeu_si128((__m128i *)(void *)(out + at), chunk);
        unsigned from = 0;
        while (marks != 0) {
            unsigned place = (unsigned)__builtin_ctz(marks);
            at += place - from;
            out[at++] = 0x5C;
            from = place;
            _mm_storeu_si128((__m128i *)(void *)(out + at), _mm_loadu_si128((const __m128i *)(const void *)(source + index + from)));
            marks &= marks - 1;
        }
        at += 16 - from;
    }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (; index + 8 <= count; index += 8) {
        uint64_t word;
        memcpy(&word, source + index, 8);
        if (((word - ones * 0x20) & ~word & highs) != 0) {
            for (size_t offset = 0; offset < 8; offset++) at += compass_escape_byte(source[index + offset], out + at);
            continue;
        }
        // The high bit of each byte that is zero after the xor: each quote and backslash, exactly.
        uint64_t quotes = word ^ (ones * 0x22), backslashes = word ^ (ones * 0x5C);
        uint64_t marks = ~((((quotes & ~highs) + ~highs) | quotes | ~highs) & (((backslashes & ~highs) + ~highs) | backslashes | ~highs));
        memcpy(out + at, &word, 8);
        unsigned from = 0;
        while (marks != 0) {
            unsigned place = (unsigned)__builtin_ctzll(marks) >> 3;
            at += place - from;
            out[at++] = 0x5C;
            from = place;
            uint64_t rest = word >> (from * 8);
            memcpy(out + at, &rest, 8);
            marks &= marks - 1;
        }
        at += 8 - from;
    }
#endif
    for (; index < count; index++) at += compass_escape_byte(source[index], out + at);
    return at;
}

// The `count` bytes at `source` as lower-case hex digits, two a byte, at `out` (room for twice
// `count`, nothing written past it). Sixteen bytes at a time with SSE2: each half-byte's digit is
// it plus '0', plus 39 more ('a' - '0' - 10) above 9; then one by one.
static inline void compass_hex(const uint8_t *source, size_t count, uint8_t *out) {
    static const char digits[] = "0123456789abcdef";
    size_t index = 0;
#if defined(__SSE2__)
    const __m128i low = _mm_set1_epi8(0x0F), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9), letters = _mm_set1_epi8(39);
    for (; index + 16 <= count; index += 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)(source + index));
        __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low), rest = _mm_and_si128(bytes, low);
        high = _mm_add_epi8(_mm_add_epi8(high, zero), _mm_and_si128(_mm_cmpgt_epi8(high, nine), letters));
        rest = _mm_add_epi8(_mm_add_epi8(rest, zero), _mm_and_si128(_mm_cmpgt_epi8(rest, nine), letters));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * index), _mm_unpacklo_epi8(high, rest));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * index + 16), _mm_unpackhi_epi8(high, rest));
    }
#endif
    for (; index < count; index++) {
        out[2 * index] = (uint8_t)digits[source[index] >> 4];
        out[2 * index + 1] = (uint8_t)digits[source[index] & 15];
    }
}

#endif
