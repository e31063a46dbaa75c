/* Host and process identity. */
#include "edr/identity.h"
#include "edr/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

/* Fixed key of the entity hash: changing it changes every entity id. */
static const uint64_t ENTITY_KEY = 0x6564722d656e7469ull; /* "edr-enti" */

static void put128(XXH128_hash_t h, uint8_t out[EDR_ID_LEN])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
    }
}

void edr_entity_id(const uint8_t host_id[EDR_ID_LEN], const uint8_t boot_id[EDR_ID_LEN],
                   uint32_t tgid, uint64_t start_boot_ns, uint8_t out[EDR_ID_LEN])
{
    uint8_t buf[EDR_ID_LEN * 2 + 12];
    memcpy(buf, host_id, EDR_ID_LEN);
    memcpy(buf + EDR_ID_LEN, boot_id, EDR_ID_LEN);
    memcpy(buf + 2 * EDR_ID_LEN, &tgid, 4);
    memcpy(buf + 2 * EDR_ID_LEN + 4, &start_boot_ns, 8);
    put128(XXH3_128bits_withSeed(buf, sizeof(buf), ENTITY_KEY), out);
}

void edr_entity_id_from_guid(const uint8_t host_id[EDR_ID_LEN], const char *guid, size_t len,
                             uint8_t out[EDR_ID_LEN])
{
    /* GUIDs are case-insensitive: hash the lower-case form after the host id,
     * all of it (two long ids with one prefix were one process), streamed
     * in pieces: the same bytes give the same id as one call would */
    if (len <= 128) { /* every real GUID (38): one call, the same id as the stream */
        uint8_t one[EDR_ID_LEN + 128];
        memcpy(one, host_id, EDR_ID_LEN);
        for (size_t i = 0; i < len; i++)
            one[EDR_ID_LEN + i] = (uint8_t)tolower((unsigned char)guid[i]);
        put128(XXH3_128bits_withSeed(one, EDR_ID_LEN + len, ENTITY_KEY ^ 0x67756964ull), out);
        return;
    }
    XXH3_state_t st;
    memset(&st, 0, sizeof(st)); /* reset sets what is read; GCC cannot tell */
    XXH3_128bits_reset_withSeed(&st, ENTITY_KEY ^ 0x67756964ull);
    XXH3_128bits_update(&st, host_id, EDR_ID_LEN);
    uint8_t buf[128];
    for (size_t off = 0; off < len;) {
        size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)tolower((unsigned char)guid[off + i]);
        XXH3_128bits_update(&st, buf, n);
        off += n;
    }
    put128(XXH3_128bits_digest(&st), out);
}

void edr_host_id_from_name(const char *name, uint8_t out[EDR_ID_LEN])
{
    char lower[256];
    size_t len = strlen(name);
    if (len <= sizeof(lower)) { /* one call: the same id as the stream */
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)tolower((unsigned char)name[i]);
        put128(XXH3_128bits_withSeed(lower, len, ENTITY_KEY ^ 0x686f7374ull), out);
        return;
    }
    XXH3_state_t st;
    memset(&st, 0, sizeof(st));
    XXH3_128bits_reset_withSeed(&st, ENTITY_KEY ^ 0x686f7374ull);
    for (size_t off = 0; off < len;) { /* all of it: long names differing late were one host */
        size_t n = len - off < sizeof(lower) ? len - off : sizeof(lower);
        for (size_t i = 0; i < n; i++)
            lower[i] = (char)tolower((unsigned char)name[off + i]);
        XXH3_128bits_update(&st, lower, n);
        off += n;
    }
    put128(XXH3_128bits_digest(&st), out);
}

char *edr_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
    return out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int edr_unhex(const char *s, uint8_t *out, size_t n)
{
    size_t got = 0;
    int hi = -1;
    for (; *s; s++) {
        if (*s == '-')
            continue;
        int v = hexval((unsigned char)*s);
        if (v < 0 || got == n)
            return EDR_EINVAL;
        if (hi < 0) {
            hi = v;
        } else {
            out[got++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return (got == n && hi < 0) ? 0 : EDR_EINVAL;
}

static int read_hex_file(const char *path, uint8_t out[EDR_ID_LEN])
{
    char line[128];
    FILE *f = fopen(path, "r");
    if (!f)
        return EDR_ENOENT;
    int rc = fgets(line, sizeof(line), f) ? 0 : EDR_EIO;
    fclose(f);
    if (rc)
        return rc;
    line[strcspn(line, "\r\n")] = 0;
    return edr_unhex(line, out, EDR_ID_LEN);
}

int edr_host_id_local(uint8_t out[EDR_ID_LEN])
{
    if (read_hex_file("/etc/machine-id", out) == 0)
        return 0;
    struct utsname u;
    if (uname(&u) != 0)
        return EDR_EIO;
    edr_host_id_from_name(u.nodename, out);
    return 0;
}

int edr_boot_id_local(uint8_t out[EDR_ID_LEN])
{
    int rc = read_hex_file("/proc/sys/kernel/random/boot_id", out);
    if (rc)
        memset(out, 0, EDR_ID_LEN);
    return rc;
}
