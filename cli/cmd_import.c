/* edr import sysmon: Sysmon exports (three shapes, Windows and Linux) straight into a store, without Kafka. */
#include "cli_int.h"
#include "edr/err.h"
#include "edr/config.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/log.h"
#include "edr/store.h"
#include "edr/sysmon.h"
#include "edr/text.h"
#include "edr/vec.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

typedef struct imp {
    edr_store_writer_t *w;
    edr_frame_ctx_t *enc; /* the frame.* settings' */
    uint32_t dict_id;     /* frame.dict_id */
    uint8_t *pack; /* a batch packed, to hash its content */
    size_t pack_cap;
    uint64_t batches, duplicates, events;
    uint64_t c_batches, c_duplicates, c_events; /* of those, committed */
    /* the store's other shards, to keep a host in one shard (NULL: this is
     * the only one), and the hosts checked against them */
    edr_store_t *others;
    int opened; /* others looked for */
    const char *store;
    int shard;
    uint8_t (*checked)[16];
    size_t n_checked, cap_checked;
    int err;
} imp_t;

/* The shard imports go to by default: above every Kafka partition's shard
 * (a collector owns partitions 0-1023 and writes shard N for partition N),
 * so no collector's retention deletes what was imported. Imported records
 * are mostly older than collector.retention: in shard 0 the first collector
 * on the store deleted them all at its start (review-1206n-import 1). */
#define IMPORT_SHARD 1024

/* The signal (SIGINT, SIGTERM) that asked the import to stop, or 0. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
    stop_sig = sig;
}

/* A host lives in one shard (the collector keys partitions by host): one
 * imported into a second shard showed as two hosts, its events twice. 0,
 * EDR_EEXIST after saying which shard holds it, or an error. */
static int check_host_shard(imp_t *im, const Edr__V1__EventBatch *b)
{
    if (!im->others || !b->sensor || b->sensor->host_id.len != 16)
        return 0;
    const uint8_t *h = b->sensor->host_id.data;
    for (size_t i = 0; i < im->n_checked; i++)
        if (!memcmp(im->checked[i], h, 16))
            return 0;
    int at = edr_store_host_shard(im->others, h, im->shard);
    if (at >= 0) {
        char hex[33];
        edr_hex(h, 16, hex);
        edr_cli_error("edr import", "host %s (%s) is stored in shard %d of this store: import "
                      "it with --shard %d", b->sensor->hostname ? b->sensor->hostname : "",
                      hex, at, at);
        return EDR_EEXIST;
    }
    if (at != EDR_ENOENT)
        return at;
    if (EDR_VEC_RESERVE(im->checked, im->cap_checked, im->n_checked + 1, 16))
        return EDR_ENOMEM;
    memcpy(im->checked[im->n_checked++], h, 16);
    return 0;
}

/* Commits what was added; what the summary counts as stored. */
static int imp_commit(imp_t *im)
{
    int rc = im->w ? edr_store_writer_commit(im->w) : 0;
    if (!rc) {
        im->c_batches = im->batches;
        im->c_duplicates = im->duplicates;
        im->c_events = im->events;
    }
    return rc;
}

/* Bits of a batch's sequence number that hash its content (the rest, above
 * them, is the batch's start, in ms within its hour). */
#define CONTENT_BITS 41

/* A batch's sequence number is its content: the millisecond its first
 * record falls on within its hour, above 41 bits of a hash of what it
 * holds. The same records cut into the same batches give the same (host,
 * seq) keys, which the store keeps once: a file imported again, from a
 * pipe or grown, stores again only the batches that differ. A host's blocks
 * are keyed host | hour | seq, so its batches follow one another in time
 * within an hour, also those of two files of one host (they followed the
 * batch's number in its file until 2026-12-06: two files' batches
 * interleaved, and `edr store host` showed a later block first:
 * review-1206n-import 5). Same-millisecond starts of one host, rare at
 * --batch-events 1000, follow their hashes. */
static int content_seq(imp_t *im, Edr__V1__EventBatch *b)
{
    uint64_t ms = b->base_time_ns % EDR_STORE_BUCKET_NS / 1000000u; /* < 2^22 */
    b->seq = 0;
    size_t len = edr__v1__event_batch__get_packed_size(b);
    if (len > im->pack_cap) {
        uint8_t *np = realloc(im->pack, len);
        if (!np)
            return EDR_ENOMEM;
        im->pack = np;
        im->pack_cap = len;
    }
    edr__v1__event_batch__pack(b, im->pack);
    uint64_t h = XXH3_64bits(im->pack, len);
    b->seq = (ms << CONTENT_BITS) | (h & ((1ull << CONTENT_BITS) - 1));
    return 0;
}

/* Whether the store at root has a shard other than `shard`. */
static int other_shards(const char *root, int shard)
{
    DIR *d = opendir(root);
    struct dirent *de;
    unsigned num;
    int found = 0;
    while (d && !found && (de = readdir(d)))
        found = sscanf(de->d_name, "shard-%u", &num) == 1 && (int)num != shard;
    if (d)
        closedir(d);
    return found;
}

/* Opens the store's other shards at the first batch (to keep each host in
 * one shard), then, once the batch's host may go to this shard, the writer:
 * an import of nothing, or one refused, leaves no empty shard behind. 0, or
 * EDR_ESTORE after saying why. */
static int imp_open_others(imp_t *im)
{
    char err[1024];
    im->opened = 1;
    if (other_shards(im->store, im->shard) &&
        !(im->others = edr_store_open(im->store, NULL, err, sizeof(err)))) {
        edr_cli_error("edr import", "%s", err);
        return EDR_ESTORE;
    }
    return 0;
}

static int imp_open(imp_t *im)
{
    char err[1024];
    im->w = edr_store_writer_open(im->store, (unsigned)im->shard, NULL, err, sizeof(err));
    if (!im->w) {
        edr_cli_error("edr import", "%s", err);
        return EDR_ESTORE;
    }
    return 0;
}

static int on_batch(void *ud, Edr__V1__EventBatch *b)
{
    imp_t *im = ud;
    const uint8_t *fr;
    size_t fl;
    int rc = im->opened ? 0 : imp_open_others(im);
    if (rc)
        return rc;
    rc = check_host_shard(im, b);
    if (rc) return rc;
    rc = im->w ? 0 : imp_open(im);
    if (rc)
        return rc;
    rc = content_seq(im, b);
    if (rc)
        return rc;
    rc = edr_frame_encode(im->enc, b, im->dict_id, &fr, &fl);
    if (rc)
        return rc;
    rc = edr_store_writer_add(im->w, fr, fl, b);
    if (rc < 0)
        return rc;
    if (rc == 1)
        im->duplicates++;
    else {
        im->batches++;
        im->events += b->n_events;
    }
    if (edr_store_writer_pending(im->w) >= 256)
        return imp_commit(im);
    return 0;
}

/* Opens an input; its size when it is a regular file (0 for a pipe), for
 * the progress bar. NULL (errno set) when it cannot be read; EISDIR for a
 * directory. */
static FILE *open_input(const char *path, uint64_t *size)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : fdopen(dup(0), "r");
    struct stat st;
    if (!f)
        return NULL;
    int e = fstat(fileno(f), &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        fclose(f);
        errno = e;
        return NULL;
    }
    *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    return f;
}

/* 1 when f starts with the gzip magic (left unread), after saying how to
 * import it: its bytes would be read as malformed records. */
static int gzipped(FILE *f, const char *path)
{
    int c0 = getc(f), c1 = c0 == EOF ? EOF : getc(f);
    if (c1 != EOF) ungetc(c1, f);
    if (c0 != EOF) ungetc(c0, f); /* glibc: two pushed back for a stream read from */
    if (c0 != 0x1f || c1 != 0x8b) return 0;
    fprintf(stderr, "edr import: ");
    edr_cli_print_escaped(stderr, path);
    fprintf(stderr, ": gzip-compressed: decompress it first (zcat FILE | edr import sysmon - "
                    "--store DIR)\n");
    return 1;
}

static void progress(const char *name, uint64_t done, uint64_t total, uint64_t events)
{
    char shown[100]; /* the file's name, escaped as all text for a terminal */
    edr_text_escape(shown, sizeof(shown), name);
    name = shown;
    if (!total) { /* a pipe: no size to measure against */
        fprintf(stderr, "\r%-24.24s %llu events", name, (unsigned long long)events);
        return;
    }
    int width = 30, fill = (int)((double)done / (double)total * width);
    fprintf(stderr, "\r%-24.24s [%.*s%*s] %3d%% %llu events", name, fill,
            "##############################", width - fill, "",
            total ? (int)(100.0 * (double)done / (double)total) : 100, (unsigned long long)events);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edr import sysmon FILE... --store DIR [--shard N] [--batch-events N]\n"
               "                         [--config FILE] [--set KEY=VALUE]...\n"
               "Reads Sysmon exports (syslog XML, EventData JSON, flat JSON, or edr JSON lines)\n"
               "and writes them into the store at DIR, as the collector would. FILE may be a\n"
               "pipe (- or /dev/stdin).\n"
               "  --shard N         the store's shard (default 1024). Shards 0-1023 are those of\n"
               "                    Kafka partitions: a collector owning one deletes what is\n"
               "                    older than collector.retention, imports included. A shard\n"
               "                    above them is kept until its directory is removed. A host\n"
               "                    lives in one shard: one the store has elsewhere is refused.\n"
               "  --batch-events N  events per stored batch (default 1000)\n"
               "  --config FILE, --set KEY=VALUE  configuration (docs/config.md): batches are\n"
               "                    compressed as a sensor's, with frame.zstd_level, frame.split\n"
               "                    and frame.dict_id's dictionary from frame.dict_dir\n"
               "A batch already in the store (the same records, cut the same way: same\n"
               "--batch-events, at the same place in the file) is not stored again: re-importing\n"
               "a file, or the same file through a pipe, stores nothing twice. A file that grew\n"
               "at its end stores again the records of its old last batch of each host (up to\n"
               "N each). Batches imported by an edr older than 2026-12-06 are not recognised:\n"
               "import again into a new store. Prints records read, imported and skipped by\n"
               "reason; exits non-zero only when nothing could be imported. Interrupted (SIGINT,\n"
               "SIGTERM), it stores the whole batches read, prints its summary and exits 128 +\n"
               "the signal: importing the same files again stores the rest.\n");
}

int edr_cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"shard", required_argument, 0, 'n'},
                                         {"batch-events", required_argument, 0, 'b'},
                                         {"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 'x'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "sysmon") != 0) {
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    argc--;
    argv++;
    const char *store = NULL, *cfg_path = NULL;
    char *sets[EDR_CLI_MAX_SETS];
    int n_sets = 0;
    long long shard = IMPORT_SHARD, batch_events = 1000;
    int c;
    optind = 1;
    opterr = 0; /* getopt would name "sysmon" as the program */
    while ((c = getopt_long(argc, argv, "s:n:b:c:x:h", opts, NULL)) != -1) {
        if (c == '?') {
            fprintf(stderr, "edr import: ");
            edr_cli_print_escaped(stderr, argv[optind - 1]);
            fprintf(stderr, ": %s\n",
                    optopt && strchr("snbcx", optopt) ? "needs a value" : "unknown option");
            usage(stderr);
            return 2;
        }
        if (c == 's')
            store = optarg;
        else if (c == 'c')
            cfg_path = optarg;
        else if (c == 'x') {
            if (edr_cli_add_set("import", sets, &n_sets, optarg)) return 2;
        } else if (c == 'n') {
            if (edr_cli_parse_num("import", "--shard", optarg, 0, 65535, &shard))
                return 2;
        } else if (c == 'b') {
            if (edr_cli_parse_num("import", "--batch-events", optarg, 1, 1000000, &batch_events))
                return 2;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (!store || optind >= argc) {
        fprintf(stderr, "edr import: %s\n", !store ? "--store DIR is required" : "no FILE to import");
        usage(stderr);
        return 2;
    }
    /* frames are encoded as a sensor with the same settings would: its zstd
     * level, split form and dictionary (frame.dict_id from frame.dict_dir) */
    char cerr[1024];
    edr_config_t *cfg = edr_config_new();
    if (!cfg || edr_config_load_standard(cfg, cfg_path, sets, n_sets) != 0) {
        edr_config_destroy(cfg); /* the loader said why */
        return 1;                /* a bad setting (docs/config.md); 2 is for bad flags */
    }
    int rc = 1;
    imp_t im = {0};
    im.enc = edr_frame_ctx_from_config(cfg, &im.dict_id, cerr, sizeof(cerr));
    edr_config_destroy(cfg);
    if (!im.enc) {
        edr_cli_error("edr import", "%s", cerr);
        return 1;
    }
    /* no SA_RESTART: a read from a pipe that waits returns at the signal */
    struct sigaction sa = {.sa_handler = on_stop}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    stop_sig = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    edr_sysmon_parser_t *p = edr_sysmon_parser_new(NULL);
    edr_sysmon_batcher_t *bt = edr_sysmon_batcher_new((size_t)batch_events, on_batch, &im);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    char *line = NULL;
    size_t cap = 0;
    int tty = isatty(2);
    uint64_t read_errors = 0;
    int store_ok = 0;
    if (!p || !bt || !im.enc)
        goto out;
    im.store = store;
    im.shard = (int)shard;
    const char *stop_at = NULL; /* the file being read when a signal came */
    uint64_t stop_line = 0;
    int err_file[EDR_SYSMON_FIRST_ERRORS]; /* the file each of the first errors came from */
    uint64_t errs_named = 0;                /* errors whose file err_file has */
    for (int i = optind; i < argc; i++) {
        uint64_t fsize = 0;
        if (stop_sig) break;
        FILE *f = open_input(argv[i], &fsize);
        if (f && gzipped(f, argv[i])) {
            fclose(f);
            read_errors++;
            continue;
        }
        if (!f) {
            fprintf(stderr, "edr import: ");
            edr_cli_print_escaped(stderr, argv[i]);
            fprintf(stderr, ": cannot read: %s\n", strerror(errno));
            read_errors++;
            continue;
        }
        uint64_t lineno = 0, done = 0;
        ssize_t n;
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        while ((n = edr_sysmon_read_line(p, f, &line, &cap, lineno + 1)) >= 0 || n == EDR_ENOMEM ||
               n == EDR_EAGAIN) {
            if (stop_sig) break;
            if (n == EDR_EAGAIN) continue; /* the rest of an overlong line */
            lineno++;
            if (n == EDR_ENOMEM) {
                fprintf(stderr, "edr import: ");
                edr_cli_print_escaped(stderr, argv[i]);
                fprintf(stderr, ":%llu: out of memory reading the line\n",
                        (unsigned long long)lineno);
                continue;
            }
            done += (uint64_t)n;
            edr_sysmon_record_t r;
            int pr = n ? edr_sysmon_parse_line(p, line, (size_t)n, lineno, &a, &r) : 0;
            for (; errs_named < edr_sysmon_parser_stats(p)->n_errors &&
                   errs_named < EDR_SYSMON_FIRST_ERRORS;
                 errs_named++)
                err_file[errs_named] = i;
            if (pr == 1) {
                int ar = edr_sysmon_batcher_add(bt, &r);
                if (ar) {
                    fprintf(stderr, "edr import: ");
                    edr_cli_print_escaped(stderr, argv[i]);
                    fprintf(stderr, ":%llu: %s\n", (unsigned long long)lineno,
                            ar == EDR_EEXIST ? "stopped" : edr_strerror(ar));
                    fclose(f);
                    goto stopped;
                }
            }
            edr_arena_reset(&a);
            if (tty && lineno % 2000 == 0)
                progress(base, done, fsize, im.events);
        }
        if (stop_sig) {
            /* the whole batches added are committed below; the one being
             * filled is dropped: stored now it would differ from the one
             * the same file cuts when imported again, and come twice */
            stop_at = argv[i];
            stop_line = lineno;
            if (tty) { /* the summary below the bar, not on it */
                progress(base, done, fsize, im.events);
                fputc('\n', stderr);
            }
            fclose(f);
            break;
        }
        /* a file's batches end with the file: the next file numbers its own */
        int fr = edr_sysmon_batcher_restart(bt);
        if (!fr && ferror(f)) {
            fprintf(stderr, "edr import: ");
            edr_cli_print_escaped(stderr, argv[i]);
            fprintf(stderr, ": read error after line %llu\n", (unsigned long long)lineno);
            read_errors++;
        }
        if (fr) {
            fprintf(stderr, "edr import: ");
            edr_cli_print_escaped(stderr, argv[i]);
            fprintf(stderr, ": %s\n", fr == EDR_EEXIST ? "stopped" : edr_strerror(fr));
            fclose(f);
            goto stopped;
        }
        if (tty) {
            progress(base, done, fsize, im.events);
            fputc('\n', stderr);
        }
        fclose(f);
    }
    if (imp_commit(&im)) {
        fprintf(stderr, "edr import: store commit failed\n");
        goto stopped;
    }
    store_ok = 1;
stopped:; /* a store that failed (a full disk): what was stored before it */
    const edr_sysmon_stats_t *ps = edr_sysmon_parser_stats(p);
    uint64_t skipped = 0;
    for (int r = 0; r < EDR_SYSMON_SKIP__COUNT; r++)
        skipped += ps->skipped[r];
    printf("records read:     %llu\n", (unsigned long long)ps->lines);
    printf("events imported:  %llu in %llu batches (%llu batches already stored)\n",
           (unsigned long long)im.c_events, (unsigned long long)im.c_batches,
           (unsigned long long)im.c_duplicates);
    printf("records skipped:  %llu\n", (unsigned long long)skipped);
    for (int r = 0; r < EDR_SYSMON_SKIP__COUNT; r++)
        if (ps->skipped[r])
            printf("  %-16s %llu\n", edr_sysmon_skip_name((edr_sysmon_skip_t)r),
                   (unsigned long long)ps->skipped[r]);
    if (ps->xml_recovered)
        printf("xml repaired:     %llu (%llu cut short: their last field dropped)\n",
               (unsigned long long)ps->xml_recovered, (unsigned long long)ps->xml_cut_fields);
    for (uint64_t e = 0; e < errs_named; e++) {
        printf("  ");
        edr_cli_print_escaped(stdout, argv[err_file[e]]);
        printf(":%llu: %s: ", (unsigned long long)ps->first_errors[e].lineno,
               edr_sysmon_skip_name(ps->first_errors[e].reason));
        edr_cli_print_escaped(stdout, ps->first_errors[e].msg);
        printf("\n");
    }
    if (ps->n_errors > errs_named)
        printf("  (%llu more not shown)\n", (unsigned long long)(ps->n_errors - errs_named));
    if (read_errors)
        printf("files unreadable: %llu\n", (unsigned long long)read_errors);
    if (!store_ok) {
        fprintf(stderr, "edr import: stopped early: the summary counts what was stored "
                        "before\n");
        goto out;
    }
    if (stop_sig) {
        fprintf(stderr, "edr import: interrupted (%s)", strsignal(stop_sig));
        if (stop_at) {
            fprintf(stderr, " at ");
            edr_cli_print_escaped(stderr, stop_at);
            fprintf(stderr, ":%llu", (unsigned long long)stop_line);
        }
        fprintf(stderr, ": the summary counts what was stored; importing the same files again "
                        "stores the rest\n");
        rc = 128 + stop_sig;
        goto out;
    }
    rc = (im.c_batches + im.c_duplicates) ? 0 : 1;
    if (rc)
        fprintf(stderr, "edr import: nothing could be imported\n");
out:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    edr_sysmon_batcher_destroy(bt); /* before the writer: it may not flush into a closed store */
    edr_store_writer_destroy(im.w);
    edr_store_destroy(im.others);
    free(im.checked);
    edr_sysmon_parser_destroy(p);
    edr_frame_ctx_destroy(im.enc);
    free(im.pack);
    edr_arena_close(&a);
    free(line);
    return rc;
}
