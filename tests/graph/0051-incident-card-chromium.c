/* The HTML incident card renders in headless Chromium: non-blank screenshot, no script errors, telemetry shown as text. */
#include "edr_test.h"

#include "edr/err.h"
#include "edr/graph.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define LINUX_FILE EDR_DATASETS "/otrf-log4shell/linux-sysmon-syslog.jsonl"

static const char *chromium(void)
{
    static const char *const c[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
    for (size_t i = 0; i < 3; i++)
        if (access(c[i], X_OK) == 0)
            return c[i];
    return NULL;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Fraction (per mille) of pixels that differ from the top-left pixel of an
 * 8-bit RGB/RGBA PNG; -1 when the file is not such a PNG. */
static int png_ink_permille(const unsigned char *p, size_t n)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n < 33 || memcmp(p, sig, 8))
        return -1;
    uint32_t w = 0, h = 0;
    int bpp = 0;
    unsigned char *idat = NULL;
    size_t il = 0;
    for (size_t o = 8; o + 12 <= n;) {
        uint32_t len;
        memcpy(&len, p + o, 4);
        len = ntohl(len);
        const unsigned char *type = p + o + 4, *data = p + o + 8;
        if (o + 12 + len > n)
            break;
        if (!memcmp(type, "IHDR", 4)) {
            memcpy(&w, data, 4);
            memcpy(&h, data + 4, 4);
            w = ntohl(w);
            h = ntohl(h);
            if (data[8] != 8 || (data[9] != 2 && data[9] != 6))
                return -1;
            bpp = data[9] == 6 ? 4 : 3;
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = realloc(idat, il + len);
            memcpy(idat + il, data, len);
            il += len;
        }
        o += 12 + len;
    }
    if (!w || !h || !idat)
        return -1;
    size_t stride = (size_t)w * (size_t)bpp, rawlen = (stride + 1) * h;
    unsigned char *raw = malloc(rawlen);
    uLongf dl = rawlen;
    if (uncompress(raw, &dl, idat, il) != Z_OK || dl != rawlen) {
        free(raw);
        free(idat);
        return -1;
    }
    unsigned char *img = calloc(stride * h, 1);
    for (uint32_t y = 0; y < h; y++) {
        int f = raw[y * (stride + 1)];
        const unsigned char *src = raw + y * (stride + 1) + 1;
        unsigned char *row = img + y * stride, *up = y ? img + (y - 1) * stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)bpp ? row[x - bpp] : 0, b = up ? up[x] : 0,
                c = up && x >= (size_t)bpp ? up[x - bpp] : 0;
            int v = src[x];
            switch (f) {
            case 1:
                v += a;
                break;
            case 2:
                v += b;
                break;
            case 3:
                v += (a + b) / 2;
                break;
            case 4:
                v += paeth(a, b, c);
                break;
            default:
                break;
            }
            row[x] = (unsigned char)v;
        }
    }
    size_t diff = 0;
    for (size_t i = 0; i < (size_t)w * h; i++)
        diff += memcmp(img + i * (size_t)bpp, img, 3) != 0;
    free(img);
    free(raw);
    free(idat);
    return (int)(diff * 1000 / ((size_t)w * h));
}

static void test_card_in_chromium(void **state)
{
    (void)state;
    const char *chrome = chromium();
    if (!chrome || access(LINUX_FILE, R_OK) != 0)
        skip();
    char dir[] = "/tmp/edr-card-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char html[256], png[256], log[256], dom[256], data[256], cmd[2048];
    /* hostile telemetry: the dataset with whoami's command line carrying a
     * script (XML-escaped inside the record, as Sysmon writes it) */
    snprintf(data, sizeof(data), "%s/sysmon.jsonl", dir);
    size_t dlen;
    unsigned char *raw_data = slurp(LINUX_FILE, &dlen);
    assert_non_null(raw_data);
    static const char from[] = "CommandLine\\\"\\u003ewhoami\\u003c/Data";
    static const char to[] = "CommandLine\\\"\\u003ewhoami \\u0026lt;script\\u0026gt;"
                             "document.title='cmdline-pwned'\\u0026lt;/script\\u0026gt;\\u003c/Data";
    char *hit = strstr((char *)raw_data, from);
    assert_non_null(hit);
    FILE *df = fopen(data, "w");
    assert_non_null(df);
    fwrite(raw_data, 1, (size_t)(hit - (char *)raw_data), df);
    fputs(to, df);
    fputs(hit + strlen(from), df);
    fclose(df);
    free(raw_data);
    edr_graph_t *g = edr_graph_new();
    char err[256];
    assert_int_equal(edr_graph_load_sysmon(g, data, err, sizeof(err)), 0);
    uint32_t n = edr_graph_find_pid(g, NULL, 17832, 0, NULL);
    edr_rca_t *r = edr_rca_run(g, n, 0, NULL, NULL);
    assert_non_null(r);
    snprintf(html, sizeof(html), "%s/card.html", dir);
    snprintf(png, sizeof(png), "%s/shot.png", dir);
    snprintf(log, sizeof(log), "%s/chromium.log", dir);
    snprintf(dom, sizeof(dom), "%s/dom.html", dir);
    FILE *f = fopen(html, "w");
    /* hostile telemetry in the card's own text: must stay text */
    const char *acts[] = {"isolated host <script>document.title='pwned'</script>", "killed bash (17806)"};
    edr_export_opts_t o = {.title = "Log4Shell <img src=x onerror=alert(1)>", .actions = acts, .n_actions = 2};
    assert_int_equal(edr_rca_export(g, r, EDR_EXPORT_HTML, &o, f), 0);
    fclose(f);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run "
                        "--disable-component-update --disable-sync --disable-default-apps --mute-audio "
                        "--hide-scrollbars --enable-logging=stderr --v=0";
    snprintf(cmd, sizeof(cmd), "timeout 120 %s %s --user-data-dir=%s/profile1 --window-size=1280,2000 "
             "--screenshot=%s file://%s 2>%s >/dev/null", chrome, flags, dir, png, html, log);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "timeout 120 %s %s --user-data-dir=%s/profile2 --dump-dom file://%s >%s 2>>%s",
             chrome, flags, dir, html, dom, log);
    assert_int_equal(system(cmd), 0);
    size_t len;
    unsigned char *shot = slurp(png, &len);
    assert_non_null(shot);
    int ink = png_ink_permille(shot, len);
    free(shot);
    if (ink < 5)
        fail_msg("screenshot looks blank (%d per mille of pixels differ)", ink);
    unsigned char *lg = slurp(log, &len);
    assert_non_null(lg);
    if (strstr((char *)lg, "Uncaught") || strstr((char *)lg, ":ERROR:CONSOLE") ||
        strstr((char *)lg, "Refused to"))
        fail_msg("chromium reported a script error:\n%s", lg);
    free(lg);
    unsigned char *d = slurp(dom, &len);
    assert_non_null(d);
    assert_null(strstr((char *)d, "<script"));
    assert_null(strstr((char *)d, "<img"));
    assert_null(strstr((char *)d, "pwned</title>"));
    assert_non_null(strstr((char *)d, "&lt;script&gt;document.title='pwned'"));
    /* the command line from the telemetry is shown, as text */
    assert_non_null(strstr((char *)d, "whoami &lt;script&gt;document.title='cmdline-pwned'&lt;/script&gt;"));
    assert_null(strstr((char *)d, "cmdline-pwned</title>"));
    assert_non_null(strstr((char *)d, "<svg"));
    assert_non_null(strstr((char *)d, "whoami"));
    free(d);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
    edr_rca_destroy(r);
    edr_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_card_in_chromium)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
