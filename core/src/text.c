/* Text from telemetry, made safe for a terminal (see edr/text.h). */
#include "edr/text.h"

#include <stdio.h>
#include <string.h>

size_t edr_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (!n)
        return 0;
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int edr_text_unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The shown form of the character at p (n bytes left) in out (room for 12
 * bytes and a NUL); sets *used to the input bytes it stands for. */
static size_t escape_one(const unsigned char *p, size_t n, char *out, size_t *used)
{
    uint32_t cp;
    size_t k = edr_utf8_next(p, n, &cp);
    if (!k) {
        *used = 1;
        return (size_t)snprintf(out, 13, "\\x%02x", *p);
    }
    *used = k;
    if (cp == '\\')
        return (size_t)snprintf(out, 13, "\\\\");
    if (cp == '\n')
        return (size_t)snprintf(out, 13, "\\n");
    if (cp == '\t')
        return (size_t)snprintf(out, 13, "\\t");
    if (edr_text_unsafe_cp(cp))
        return (size_t)snprintf(out, 13, cp < 0x80 ? "\\x%02x" : "\\u{%04x}", (unsigned)cp);
    memcpy(out, p, k);
    out[k] = '\0';
    return k;
}

void edr_text_fput_escaped(FILE *f, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        char one[13];
        size_t used, len = escape_one(p, n, one, &used);
        fwrite(one, 1, len, f);
        p += used;
        n -= used;
    }
}

size_t edr_text_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (!cap)
        return 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (n) {
        char one[13];
        size_t used, len = escape_one(p, n, one, &used);
        if (o + len >= cap)
            break; /* whole characters only */
        memcpy(out + o, one, len);
        o += len;
        p += used;
        n -= used;
    }
    out[o] = '\0';
    return o;
}
