/* Text from telemetry, made safe for a terminal (see edr/text.h). */
#include "edr/text.h"

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

void edr_text_fput_escaped(FILE *f, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n])
        n++;
    while (n) {
        uint32_t cp;
        size_t k = edr_utf8_next(p, n, &cp);
        if (!k)
            fprintf(f, "\\x%02x", *p), k = 1;
        else if (cp == '\\')
            fputs("\\\\", f);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (cp == '\t')
            fputs("\\t", f);
        else if (cp < 0x80 && edr_text_unsafe_cp(cp))
            fprintf(f, "\\x%02x", (unsigned)cp);
        else if (edr_text_unsafe_cp(cp))
            fprintf(f, "\\u{%04x}", (unsigned)cp);
        else
            fwrite(p, 1, k, f);
        p += k;
        n -= k;
    }
}
