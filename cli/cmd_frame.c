/* edr frame inspect, edr dict train, edr synth: tools over frame files. */
#include "cli_int.h"
#include "edr/arena.h"
#include "edr/config.h"
#include "edr/err.h"
#include "edr/event.h"
#include "edr/frame.h"
#include "edr/identity.h"
#include "edr/synth.h"

#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int load_dicts(edr_frame_ctx_t *ctx, const char *dir)
{
    if (!dir)
        return 0;
    int n = edr_frame_ctx_load_dicts(ctx, dir);
    if (n < 0) {
        edr_cli_error("edr", "cannot load dictionaries from %s: %s", dir, edr_strerror(n));
        return -1;
    }
    return 0;
}

static void frame_usage(FILE *f)
{
    fprintf(f, "usage: edr frame inspect [--dict-dir DIR] [--events] [--max-raw SIZE] FILE\n"
               "Walks a file of frames, checks each one and prints its header, sensor,\n"
               "sequence and event counts by kind. Exits 1 when any frame is bad.\n");
}

int edr_cmd_frame(int argc, char **argv)
{
    static const struct option opts[] = {{"dict-dir", required_argument, 0, 'd'},
                                         {"events", no_argument, 0, 'e'},
                                         {"max-raw", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "inspect") != 0) {
        frame_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *dict_dir = NULL;
    int show_events = 0, c;
    edr_frame_opts_t fo = {0};
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:em:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dict_dir = optarg;
            break;
        case 'e':
            show_events = 1;
            break;
        case 'm': {
            uint64_t v;
            if (edr_parse_size(optarg, &v) || v > UINT32_MAX) {
                fprintf(stderr, "edr: --max-raw: '");
                edr_cli_print_escaped(stderr, optarg);
                fprintf(stderr, "' is not a size up to 4GiB\n");
                return 2;
            }
            fo.max_raw_len = (uint32_t)v;
            break;
        }
        case 'h':
            frame_usage(stdout);
            return 0;
        default:
            frame_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        frame_usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    unsigned char *buf;
    size_t len;
    if (edr_cli_read_file(path, &buf, &len) != 0) {
        edr_cli_error("edr", "cannot read %s: %s", path, strerror(errno));
        return 1;
    }
    edr_frame_ctx_t *ctx = edr_frame_ctx_new(&fo);
    int rc = 0;
    if (!ctx || load_dicts(ctx, dict_dir)) {
        rc = 1;
        goto out;
    }
    size_t off = 0, n_frames = 0, n_bad = 0, n_events = 0, raw_total = 0;
    uint64_t kinds[EDR_EVENT_KINDS] = {0};
    while (off < len) {
        edr_frame_header_t h;
        size_t remaining = len - off;
        int hr = edr_frame_header_parse(ctx, buf + off, remaining, 0, &h);
        size_t flen = hr == 0 ? EDR_FRAME_HEADER_SIZE + (size_t)h.payload_len : 0;
        n_frames++;
        if (hr) {
            printf("frame %zu at %zu: %s\n", n_frames, off, edr_strerror(hr));
            n_bad++;
            break; /* cannot find the next frame boundary */
        }
        Edr__V1__EventBatch *b;
        int dr = edr_frame_decode(ctx, buf + off, flen, &b);
        printf("frame %zu at %zu: codec %s dict %u raw %u payload %u", n_frames, off,
               h.codec == EDR_FRAME_CODEC_ZSTD_SPLIT ? "zstd-split"
               : h.codec                             ? "zstd"
                                                     : "none",
               h.dict_id, h.raw_len, h.payload_len);
        if (dr) {
            printf(": %s\n", edr_strerror(dr));
            n_bad++;
        } else {
            char hid[33] = "-";
            if (b->sensor && b->sensor->host_id.len == 16)
                edr_hex(b->sensor->host_id.data, 16, hid);
            printf(" host %s (", hid);
            edr_cli_print_escaped(stdout, b->sensor && b->sensor->hostname ? b->sensor->hostname : "");
            printf(") seq %llu events %zu\n", (unsigned long long)b->seq, b->n_events);
            n_events += b->n_events;
            raw_total += h.raw_len;
            for (size_t i = 0; i < b->n_events; i++) {
                Edr__V1__Event *e = b->events[i];
                if ((unsigned)e->body_case < EDR_EVENT_KINDS)
                    kinds[e->body_case]++;
                if (show_events)
                    printf("  %llu pid %u %s\n", (unsigned long long)edr_event_time(b, e), e->pid,
                           edr_event_kind_name(e->body_case));
            }
        }
        off += flen;
    }
    printf("%zu frames (%zu bad), %zu events, %zu bytes on the wire, %zu raw", n_frames, n_bad,
           n_events, len, raw_total);
    if (n_events)
        printf(", %.1f bytes/event", (double)len / (double)n_events);
    printf("\n");
    for (int k = 0; k < EDR_EVENT_KINDS; k++)
        if (kinds[k])
            printf("  %-16s %llu\n", edr_event_kind_name((Edr__V1__Event__BodyCase)k),
                   (unsigned long long)kinds[k]);
    rc = n_bad ? 1 : 0;
out:
    edr_frame_ctx_destroy(ctx);
    free(buf);
    return rc;
}

static void dict_usage(FILE *f)
{
    fprintf(f, "usage: edr dict train -o OUT.zdict [--size BYTES] [--dict-dir DIR] [--unsplit]\n"
               "                      [--split-v1] FRAMEFILE...\n"
               "Trains a zstd dictionary from the batches in frame files (each frame is one\n"
               "sample). Frames are checked; bad ones are skipped and counted. Put the result\n"
               "in frame.dict_dir on every component and set frame.dict_id on sensors.\n"
               "It is trained on what sensors compress: each batch's split form (frame.split,\n"
               "the default), or with --unsplit the batch as serialized (frame.split=false);\n"
               "--split-v1: the split form without byte planes (frame.split_planes=false).\n");
}

int edr_cmd_dict(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "train") != 0) {
        int help = argc >= 2 && !strcmp(argv[1], "--help");
        dict_usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"size", required_argument, 0, 's'},
                                         {"dict-dir", required_argument, 0, 'd'},
                                         {"unsplit", no_argument, 0, 'u'},
                                         {"split-v1", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out_path = NULL, *dict_dir = NULL;
    uint64_t dict_size = 32 << 10;
    edr_frame_opts_t fo = {0};
    int c;
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:s:d:uvh", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            fo.unsplit = 1;
            break;
        case 'v':
            fo.split_v1 = 1;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            if (edr_parse_size(optarg, &dict_size) || dict_size < 1024 || dict_size > (4u << 20)) {
                fprintf(stderr, "edr: --size must be between 1KiB and 4MiB\n");
                return 2;
            }
            break;
        case 'd':
            dict_dir = optarg;
            break;
        case 'h':
            dict_usage(stdout);
            return 0;
        default:
            dict_usage(stderr);
            return 2;
        }
    }
    if (!out_path || optind >= argc) {
        dict_usage(stderr);
        return 2;
    }
    edr_frame_ctx_t *ctx = edr_frame_ctx_new(&fo);
    unsigned char *samples = NULL, *dict = NULL;
    size_t *lens = NULL, n = 0, cap = 0, used = 0, bad = 0;
    size_t scap = 0;
    int rc = 1;
    if (!ctx || load_dicts(ctx, dict_dir))
        goto out;
    for (int i = optind; i < argc; i++) {
        unsigned char *buf;
        size_t len;
        if (edr_cli_read_file(argv[i], &buf, &len) != 0) {
            edr_cli_error("edr", "cannot read %s: %s", argv[i], strerror(errno));
            goto out;
        }
        size_t off = 0;
        while (off < len) {
            size_t fl = edr_frame_len(buf + off, len - off);
            if (fl == 0 || fl > len - off) {
                bad++;
                break;
            }
            const uint8_t *raw;
            size_t raw_len;
            if (edr_frame_unwrap(ctx, buf + off, fl, &raw, &raw_len) != 0 ||
                edr_frame_compressed_form(ctx, raw, raw_len, &raw, &raw_len) != 0) {
                bad++;
            } else {
                if (n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    lens = realloc(lens, cap * sizeof(*lens));
                }
                if (used + raw_len > scap) {
                    scap = (used + raw_len) * 2;
                    samples = realloc(samples, scap);
                }
                if (!lens || !samples) {
                    free(buf);
                    fprintf(stderr, "edr: out of memory\n");
                    goto out;
                }
                memcpy(samples + used, raw, raw_len);
                used += raw_len;
                lens[n++] = raw_len;
            }
            off += fl;
        }
        free(buf);
    }
    dict = malloc(dict_size);
    long dl = dict ? edr_dict_train(dict, dict_size, samples, lens, (unsigned)n) : EDR_ENOMEM;
    if (dl < 0) {
        fprintf(stderr, "edr: cannot train a dictionary from %zu samples (need at least 8 varied "
                        "batches)\n", n);
        goto out;
    }
    edr_cli_out_t o;
    if (edr_cli_out_open(&o, "dict train", out_path) ||
        edr_cli_out_commit(&o, "dict train", fwrite(dict, 1, (size_t)dl, o.f) == (size_t)dl))
        goto out;
    edr_dict_t *d = edr_dict_new(dict, (size_t)dl, 3);
    printf("dictionary %s: id %u, %ld bytes, from %zu samples (%zu bad frames skipped)\n", out_path,
           d ? edr_dict_id(d) : 0, dl, n, bad);
    edr_dict_destroy(d);
    rc = 0;
out:
    edr_frame_ctx_destroy(ctx);
    free(samples);
    free(lens);
    free(dict);
    return rc;
}

static void synth_usage(FILE *f)
{
    fprintf(f, "usage: edr synth -o FILE [--hosts N] [--events N] [--batch N] [--seed N]\n"
               "                 [--dict-dir DIR --dict-id ID]\n"
               "Writes realistic synthetic telemetry as a frame file (defaults: 10 hosts,\n"
               "100000 events, 1000 events per batch).\n");
}

int edr_cmd_synth(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"hosts", required_argument, 0, 'H'},
        {"events", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
        {"seed", required_argument, 0, 's'},   {"dict-dir", required_argument, 0, 'd'},
        {"dict-id", required_argument, 0, 'i'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *out_path = NULL, *dict_dir = NULL;
    long long hosts = 10, events = 100000, batch = 1000, seed = 1, dict_id = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:H:n:b:s:d:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out_path = optarg;
            break;
        case 'H':
            if (edr_cli_parse_num("synth", "--hosts", optarg, 1, 1000000, &hosts))
                return 2;
            break;
        case 'n':
            if (edr_cli_parse_num("synth", "--events", optarg, 0, INT64_MAX, &events))
                return 2;
            break;
        case 'b':
            if (edr_cli_parse_num("synth", "--batch", optarg, 1, 1000000, &batch))
                return 2;
            break;
        case 's':
            if (edr_cli_parse_num("synth", "--seed", optarg, 0, INT64_MAX, &seed))
                return 2;
            break;
        case 'd':
            dict_dir = optarg;
            break;
        case 'i':
            if (edr_cli_parse_num("synth", "--dict-id", optarg, 0, UINT32_MAX, &dict_id))
                return 2;
            break;
        case 'h':
            synth_usage(stdout);
            return 0;
        default:
            synth_usage(stderr);
            return 2;
        }
    }
    if (!out_path || optind != argc) {
        synth_usage(stderr);
        return 2;
    }
    edr_synth_opts_t so = {.hosts = (uint32_t)hosts, .seed = (uint64_t)seed};
    edr_synth_t *s = edr_synth_new(&so);
    edr_frame_ctx_t *ctx = edr_frame_ctx_new(NULL);
    edr_arena_t arena;
    edr_arena_init(&arena, 1 << 20);
    edr_cli_out_t o;
    uint64_t written = 0, frames = 0, bytes = 0;
    int rc = 1;
    if (edr_cli_out_open(&o, "synth", out_path))
        goto out;
    FILE *f = o.f;
    if (!s || !ctx || load_dicts(ctx, dict_dir))
        goto out;
    for (uint32_t h = 0; written < (uint64_t)events; h = (h + 1) % (uint32_t)hosts) {
        size_t n = (uint64_t)events - written < (uint64_t)batch ? (size_t)((uint64_t)events - written)
                                                                : (size_t)batch;
        Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, n, &arena);
        const uint8_t *fr;
        size_t fl;
        int er = b ? edr_frame_encode(ctx, b, (uint32_t)dict_id, &fr, &fl) : EDR_ENOMEM;
        if (er) {
            fprintf(stderr, "edr: cannot encode: %s\n", edr_strerror(er));
            goto out;
        }
        if (fwrite(fr, 1, fl, f) != fl) {
            fprintf(stderr, "edr synth: cannot write: %s\n", strerror(errno));
            goto out;
        }
        edr_arena_reset(&arena);
        written += n;
        frames++;
        bytes += fl;
    }
    rc = 0;
out:
    if (o.f && edr_cli_out_commit(&o, "synth", rc == 0) != 0)
        rc = 1;
    if (rc == 0) /* frames go to the hosts in turn: fewer frames than hosts, fewer hosts */
        printf("%s: %" PRIu64 " events in %" PRIu64 " frames from %lld hosts, %" PRIu64
               " bytes (%.1f bytes/event)\n",
               out_path, written, frames, (long long)frames < hosts ? (long long)frames : hosts, bytes,
               written ? (double)bytes / (double)written : 0.0);
    edr_arena_close(&arena);
    edr_frame_ctx_destroy(ctx);
    edr_synth_destroy(s);
    return rc;
}

int edr_cmd_config(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: edr config defaults\nPrints every setting with its default as YAML.\n");
            return 0;
        }
    }
    if (argc != 2 || strcmp(argv[1], "defaults") != 0) {
        fprintf(stderr, "usage: edr config defaults\n");
        return 2;
    }
    edr_config_write_defaults(stdout);
    return 0;
}
