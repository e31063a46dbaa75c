/* Frame codec: round trips, dictionaries, and one test per way a frame can be bad. */
#include "edr_test.h"
#include "pb_same.h"

#include "edr/arena.h"
#include "edr/err.h"
#include "edr/frame.h"
#include "edr/synth.h"
#include "event_pack.h"
#include "pbsplit.h"
#include "pbunpack.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct {
    edr_frame_ctx_t *ctx;
    edr_synth_t *synth;
    edr_arena_t arena;
    uint8_t *frame;
    size_t len;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->ctx = edr_frame_ctx_new(NULL);
    edr_synth_opts_t so = {.hosts = 3, .seed = 7};
    fx->synth = edr_synth_new(&so);
    edr_arena_init(&fx->arena, 1 << 16);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 200, &fx->arena);
    const uint8_t *out;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &fx->len), 0);
    fx->frame = malloc(fx->len);
    memcpy(fx->frame, out, fx->len);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    edr_frame_ctx_destroy(fx->ctx);
    edr_synth_destroy(fx->synth);
    edr_arena_close(&fx->arena);
    free(fx->frame);
    free(fx);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* tests run on little-endian x86_64, like the header */
}

static void reseal(uint8_t *f, size_t len)
{
    /* recompute the checksum so that only the intended defect remains */
    uint64_t c = XXH3_64bits(f + EDR_FRAME_HEADER_SIZE, len - EDR_FRAME_HEADER_SIZE);
    memcpy(f + 24, &c, 8);
}

static int decode(fx_t *fx, const uint8_t *f, size_t len)
{
    Edr__V1__EventBatch *b;
    int rc = edr_frame_decode(fx->ctx, f, len, &b);
    if (rc)
        assert_null(b);
    return rc;
}

static void test_roundtrip_identical(void **state)
{
    fx_t *fx = *state;
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    edr_synth_opts_t so = {.hosts = 3, .seed = 7};
    edr_synth_t *s = edr_synth_new(&so);
    Edr__V1__EventBatch *orig = edr_synth_next_batch(s, 0, 200, &a);
    Edr__V1__EventBatch *b;
    assert_int_equal(edr_frame_decode(fx->ctx, fx->frame, fx->len, &b), 0);
    assert_int_equal(b->n_events, 200);
    assert_int_equal(b->seq, 1);
    /* same bytes when re-packed: every field survived, including times and tids */
    assert_int_equal(pb_same(&b->base, &orig->base), 1);
    for (size_t i = 0; i < b->n_events; i++) {
        assert_int_equal(b->events[i]->time_offset_ns, orig->events[i]->time_offset_ns);
        assert_int_equal(b->events[i]->tid, orig->events[i]->tid);
    }
    edr_synth_destroy(s);
    edr_arena_close(&a);
}

/* Checks one encoded frame: its serialized batch is byte for byte what
 * protobuf-c itself writes for the same (wire form) message, and it decodes
 * to n events. */
static void assert_packed_like_protobuf_c(const uint8_t *frame, size_t len, size_t n)
{
    edr_frame_ctx_t *c = edr_frame_ctx_new(NULL);
    const uint8_t *raw;
    size_t raw_len;
    assert_int_equal(edr_frame_unwrap(c, frame, len, &raw, &raw_len), 0);
    Edr__V1__EventBatch *w = edr__v1__event_batch__unpack(NULL, raw_len, raw);
    assert_non_null(w);
    assert_int_equal(w->n_events, n);
    size_t plen = protobuf_c_message_get_packed_size(&w->base);
    uint8_t *again = malloc(plen ? plen : 1);
    assert_int_equal(protobuf_c_message_pack(&w->base, again), plen);
    assert_int_equal(plen, raw_len);
    assert_memory_equal(again, raw, plen);
    free(again);
    edr__v1__event_batch__free_unpacked(w, NULL);
    edr_frame_ctx_destroy(c);
}

/* Split frames are written straight into their split form
 * (edr__batch_pack_split); the frame must be byte for byte the one made by
 * serializing the batch and splitting that. */
static void assert_direct_split_identical(edr_frame_ctx_t *ctx, Edr__V1__EventBatch *b,
                                          uint32_t dict_id)
{
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(ctx, b, dict_id, &out, &len), 0);
    uint8_t *direct = malloc(len);
    memcpy(direct, out, len);
    size_t direct_len = len;
    edr__frame_direct_split = 0;
    int rc = edr_frame_encode(ctx, b, dict_id, &out, &len);
    edr__frame_direct_split = 1;
    assert_int_equal(rc, 0);
    assert_int_equal(direct_len, len);
    assert_memory_equal(direct, out, len);
    free(direct);
}

/* Decoding a frame directly (pbunpack.h: from its split form, or from the
 * serialized batch of an unsplit frame) gives what unpacking with protobuf-c
 * gives (split frames joined first): the same error, or a batch that packs
 * to the same bytes. want_direct: 1 when the direct path must take the
 * frame itself, 0 when it must decline it, -1 either. */
static void assert_unpacks_alike(const uint8_t *f, size_t len, int want_direct)
{
    static edr_frame_ctx_t *direct, *joined;
    if (!direct) {
        direct = edr_frame_ctx_new(NULL);
        joined = edr_frame_ctx_new(NULL);
    }
    Edr__V1__EventBatch *x, *y;
    int rx = edr_frame_decode(direct, f, len, &x);
    edr__frame_direct_unpack = 0;
    int ry = edr_frame_decode(joined, f, len, &y);
    edr__frame_direct_unpack = 1;
    assert_int_equal(rx, ry);
    if (rx == 0)
        assert_int_equal(pb_same(&x->base, &y->base), 1);
    if (want_direct >= 0 && f[5] != EDR_FRAME_CODEC_ZSTD_SPLIT) {
        const uint8_t *raw;
        size_t raw_len;
        assert_int_equal(edr_frame_unwrap(joined, f, len, &raw, &raw_len), 0);
        edr_arena_t a;
        edr_arena_init(&a, 1 << 16);
        ProtobufCMessage *m;
        int r = edr__pb_unpack(&edr__v1__event_batch__descriptor, raw, raw_len, &a, &m);
        assert_int_equal(r == 0, want_direct);
        edr_arena_close(&a);
    } else if (want_direct >= 0) {
        const uint8_t *p = f + EDR_FRAME_HEADER_SIZE;
        size_t pl = len - EDR_FRAME_HEADER_SIZE;
        unsigned long long cs = ZSTD_getFrameContentSize(p, pl);
        uint8_t *form = malloc(cs);
        assert_int_equal(ZSTD_decompress(form, cs, p, pl), cs);
        uint32_t raw_len;
        memcpy(&raw_len, f + 12, 4);
        edr_pbsplit_t *ps = edr__pbsplit_new();
        edr_arena_t a;
        edr_arena_init(&a, 1 << 16);
        ProtobufCMessage *m;
        int r = edr__pbsplit_unpack(ps, &edr__v1__event_batch__descriptor, form, cs, raw_len,
                                    &a, &m);
        assert_int_equal(r == 0, want_direct);
        edr_arena_close(&a);
        edr__pbsplit_free(ps);
        free(form);
    }
}

static char *filled(size_t n, char ch)
{
    char *s = malloc(n + 1);
    memset(s, ch, n);
    s[n] = 0;
    return s;
}

/* The frame encoder writes protobuf itself (one pass, core/src/event_pack.c):
 * every kind of body, zero and extreme values, lengths on each side of a
 * varint step, and a command line larger than the encoder's first buffer. */
static void test_pack_matches_protobuf_c(void **state)
{
    fx_t *fx = *state;
    enum { N = 40 };
    Edr__V1__Event ev[N], *evp[N];
    Edr__V1__ProcessStart ps[4];
    Edr__V1__ProcessFork pf = EDR__V1__PROCESS_FORK__INIT;
    Edr__V1__ProcessExit px = EDR__V1__PROCESS_EXIT__INIT, px0 = EDR__V1__PROCESS_EXIT__INIT;
    Edr__V1__ProcessAccess pa = EDR__V1__PROCESS_ACCESS__INIT;
    Edr__V1__FileCreate fc = EDR__V1__FILE_CREATE__INIT;
    Edr__V1__FileWrite fw = EDR__V1__FILE_WRITE__INIT;
    Edr__V1__FileRename fr = EDR__V1__FILE_RENAME__INIT;
    Edr__V1__FileDelete fd = EDR__V1__FILE_DELETE__INIT;
    Edr__V1__FileAttr fa = EDR__V1__FILE_ATTR__INIT;
    Edr__V1__FileExec fe = EDR__V1__FILE_EXEC__INIT, fm = EDR__V1__FILE_EXEC__INIT;
    Edr__V1__BpfLoad bl = EDR__V1__BPF_LOAD__INIT;
    Edr__V1__BpfAttach ba = EDR__V1__BPF_ATTACH__INIT;
    Edr__V1__Endpoint lo = EDR__V1__ENDPOINT__INIT, re = EDR__V1__ENDPOINT__INIT;
    Edr__V1__Network nw = EDR__V1__NETWORK__INIT, nw0 = EDR__V1__NETWORK__INIT;
    Edr__V1__DnsQuery dq = EDR__V1__DNS_QUERY__INIT;
    Edr__V1__SensorHealth sh = EDR__V1__SENSOR_HEALTH__INIT;
    uint8_t id[3][16], sha[32], ip6[16];
    for (int i = 0; i < 16; i++) {
        id[0][i] = (uint8_t)(i + 1);
        id[1][i] = (uint8_t)(0xF0 ^ i);
        id[2][i] = (uint8_t)(0x80 | i);
        ip6[i] = (uint8_t)(i * 17);
    }
    memset(sha, 0xAB, sizeof(sha));
    char *s127 = filled(127, 'a'), *s128 = filled(128, 'b'), *s16k = filled(16384, 'c');
    char *huge = filled(300000, 'd'); /* larger than the encoder's first 64 KiB buffer */
    char *argv0[] = {"/bin/sh", "", NULL, "-c", s128};
    for (int i = 0; i < 4; i++)
        edr__v1__process_start__init(&ps[i]);
    ps[0].exe = "/usr/bin/x";
    ps[0].n_argv = 5;
    ps[0].argv = argv0;
    ps[0].cwd = s127;
    ps[0].uid = 0xFFFFFFFFu;
    ps[0].gid = 127;
    ps[0].user = "root";
    ps[0].group = "";
    ps[0].exe_sha256 = (ProtobufCBinaryData){32, sha};
    ps[0].cgroup_id = UINT64_MAX;
    ps[0].container_id = "c0ffee";
    ps[0].ppid = 1;
    ps[0].seeded = 1;
    ps[0].start_time_ns = 1ull << 62;
    ps[0].parent_exe = "/sbin/init";
    ps[1].command_line = huge;
    ps[1].exe = s16k;
    ps[2].exe = NULL; /* NULL strings are left out, like empty ones */
    pf.ppid = 77;
    pf.start_time_ns = 128;
    px.exit_code = -1;
    px.signal = 9;
    pa.target_entity_id = (ProtobufCBinaryData){16, id[2]};
    pa.target_pid = 4;
    pa.kind = EDR__V1__PROCESS_ACCESS__KIND__VM_WRITE;
    pa.target_exe = "/bin/victim";
    fc.path = s128;
    fc.mode = 0644;
    fw.path = "/tmp/w";
    fw.bytes = 1ull << 40;
    fr.old_path = "/tmp/a";
    fr.new_path = s16k;
    fd.path = "";
    fa.path = "/etc/shadow";
    fa.kind = EDR__V1__FILE_ATTR__KIND__CHOWN;
    fa.uid = 1000;
    fa.gid = 0;
    fe.path = "/lib/x.so";
    fe.mapped = 1;
    fe.sha256 = (ProtobufCBinaryData){32, sha};
    fe.prot = 5;
    fe.modified = 1;
    fm.mapped = fm.anonymous = 1; /* anonymous memory made executable */
    fm.by = EDR__V1__FILE_EXEC__MEMORY_BY__EXEC;
    fm.address = 0x7ffd12345000ull;
    fm.length = 1ull << 40;
    fm.prot = 7;
    bl.prog_type = 29;
    bl.name = "lsm_x";
    bl.tag = (ProtobufCBinaryData){8, sha};
    bl.prog_id = 7;
    bl.attach_to = "bprm_check_security";
    ba.prog_id = 7;
    ba.prog_name = "lsm_x";
    ba.prog_type = 29;
    ba.link_id = 70208;
    ba.link_type = 3;
    ba.attach_type = 2;
    ba.target = "system.slice";
    ba.target_id = 1ull << 40;
    ba.found = 1;
    lo.ip = (ProtobufCBinaryData){16, ip6};
    lo.port = 65535;
    re.port = 53; /* no address */
    nw.action = EDR__V1__NETWORK__ACTION__SEND;
    nw.protocol = EDR__V1__NETWORK__PROTOCOL__UDP;
    nw.direction = EDR__V1__NETWORK__DIRECTION__OUTBOUND;
    nw.local = &lo;
    nw.remote = &re;
    char *answers[] = {"1.2.3.4", ""};
    dq.name = "example.test";
    dq.qtype = 28;
    dq.n_answers = 2;
    dq.answers = answers;
    sh.fidelity = "ebpf";
    sh.events_sent = 5;
    struct {
        Edr__V1__Event__BodyCase c;
        void *body;
    } bodies[] = {
        {EDR__V1__EVENT__BODY_PROCESS_START, &ps[0]}, {EDR__V1__EVENT__BODY_PROCESS_START, &ps[1]},
        {EDR__V1__EVENT__BODY_PROCESS_START, &ps[2]}, {EDR__V1__EVENT__BODY_PROCESS_START, &ps[3]},
        {EDR__V1__EVENT__BODY_PROCESS_FORK, &pf},     {EDR__V1__EVENT__BODY_PROCESS_EXIT, &px},
        {EDR__V1__EVENT__BODY_PROCESS_EXIT, &px0},    {EDR__V1__EVENT__BODY_PROCESS_ACCESS, &pa},
        {EDR__V1__EVENT__BODY_FILE_CREATE, &fc},      {EDR__V1__EVENT__BODY_FILE_WRITE, &fw},
        {EDR__V1__EVENT__BODY_FILE_RENAME, &fr},      {EDR__V1__EVENT__BODY_FILE_DELETE, &fd},
        {EDR__V1__EVENT__BODY_FILE_ATTR, &fa},        {EDR__V1__EVENT__BODY_FILE_EXEC, &fe},
        {EDR__V1__EVENT__BODY_NETWORK, &nw},          {EDR__V1__EVENT__BODY_NETWORK, &nw0},
        {EDR__V1__EVENT__BODY_DNS_QUERY, &dq},        {EDR__V1__EVENT__BODY_SENSOR_HEALTH, &sh},
        {EDR__V1__EVENT__BODY__NOT_SET, NULL},        {EDR__V1__EVENT__BODY_FILE_CREATE, NULL},
        {EDR__V1__EVENT__BODY_FILE_EXEC, &fm},        {EDR__V1__EVENT__BODY_BPF_LOAD, &bl},
        {EDR__V1__EVENT__BODY_BPF_ATTACH, &ba},
    };
    size_t nb = sizeof(bodies) / sizeof(bodies[0]);
    for (size_t i = 0; i < N; i++) {
        edr__v1__event__init(&ev[i]);
        evp[i] = &ev[i];
        ev[i].body_case = bodies[i % nb].c;
        ev[i].process_start = bodies[i % nb].body; /* one union: any member */
        ev[i].time_offset_ns = i % 3 == 0 ? -(int64_t)i * 1000 : (int64_t)i << 33;
        if (i % 5 != 4) {
            ev[i].entity_id = (ProtobufCBinaryData){16, id[i % 2]};
            ev[i].parent_entity_id = (ProtobufCBinaryData){i % 3 ? 16u : 0u, id[2]};
            ev[i].pid = i % 4 ? (uint32_t)(100 + i % 2) : 0xFFFFFFFFu;
        } else {
            ev[i].entity_id = (ProtobufCBinaryData){5, id[0]}; /* not an id: stays inline */
        }
        ev[i].tid = (uint32_t)(i % 7 ? 0 : 300 + i);
    }
    Edr__V1__SensorInfo si = EDR__V1__SENSOR_INFO__INIT;
    si.host_id = (ProtobufCBinaryData){16, id[1]};
    si.hostname = "h";
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.sensor = &si;
    b.seq = 300;
    b.base_time_ns = 1700000000000000000ull;
    b.n_events = N;
    b.events = evp;
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, &b, 0, &out, &len), 0);
    assert_packed_like_protobuf_c(out, len, N);
    assert_direct_split_identical(fx->ctx, &b, 0);
    /* and it still decodes to what went in */
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(fx->ctx, out, len, &d), 0);
    assert_int_equal(d->n_events, N);
    assert_string_equal(d->events[1]->process_start->command_line, huge);
    assert_int_equal(d->events[5]->process_exit->exit_code, -1);
    assert_int_equal(d->events[14]->network->local->port, 65535);
    assert_int_equal(d->events[0]->time_offset_ns, 0);
    assert_int_equal(d->events[3]->time_offset_ns, -3000);
    assert_memory_equal(d->events[7]->process_access->target_entity_id.data, id[2], 16);
    /* synthetic batches of every host, as the sensor pipeline sends them */
    for (uint32_t h = 0; h < 3; h++) {
        Edr__V1__EventBatch *sb = edr_synth_next_batch(fx->synth, h, 1000, &fx->arena);
        assert_int_equal(edr_frame_encode(fx->ctx, sb, 0, &out, &len), 0);
        assert_packed_like_protobuf_c(out, len, 1000);
        assert_unpacks_alike(out, len, 1);
        assert_direct_split_identical(fx->ctx, sb, 0);
    }
    /* every body kind and extreme value, split, decoded straight from the split form */
    edr_frame_opts_t all = {.split_min = 1};
    edr_frame_ctx_t *sc = edr_frame_ctx_new(&all);
    assert_int_equal(edr_frame_encode(sc, &b, 0, &out, &len), 0);
    assert_unpacks_alike(out, len, 1);
    edr_frame_ctx_destroy(sc);
    edr_frame_opts_t none = {.unsplit = 1};
    sc = edr_frame_ctx_new(&none);
    assert_int_equal(edr_frame_encode(sc, &b, 0, &out, &len), 0);
    assert_int_equal(out[5], EDR_FRAME_CODEC_ZSTD);
    assert_unpacks_alike(out, len, 1);
    edr_frame_ctx_destroy(sc);
    /* a bound smaller than the batch is refused, not truncated */
    edr_frame_opts_t small = {.max_raw_len = 4096};
    edr_frame_ctx_t *c = edr_frame_ctx_new(&small);
    assert_int_equal(edr_frame_encode(c, &b, 0, &out, &len), EDR_EINVAL);
    edr_frame_ctx_destroy(c);
    free(s127);
    free(s128);
    free(s16k);
    free(huge);
}

static void test_uncompressed_codec(void **state)
{
    fx_t *fx = *state;
    edr_frame_opts_t o = {.uncompressed = 1};
    edr_frame_ctx_t *c = edr_frame_ctx_new(&o);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 1, 10, &fx->arena);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(c, b, 0, &out, &len), 0);
    assert_int_equal(out[5], EDR_FRAME_CODEC_NONE);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(c, out, len, &d), 0);
    assert_int_equal(d->n_events, 10);
    edr_frame_ctx_destroy(c);
}

static void test_truncated(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(decode(fx, fx->frame, 0), EDR_EFRAME_TRUNCATED);
    assert_int_equal(decode(fx, fx->frame, 10), EDR_EFRAME_TRUNCATED);
    assert_int_equal(decode(fx, fx->frame, fx->len - 1), EDR_EFRAME_TRUNCATED);
}

static void test_bad_magic(void **state)
{
    fx_t *fx = *state;
    fx->frame[0] = 'X';
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_BAD_MAGIC);
}

static void test_unknown_version(void **state)
{
    fx_t *fx = *state;
    fx->frame[4] = 9;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_VERSION);
}

static void test_unknown_codec(void **state)
{
    fx_t *fx = *state;
    fx->frame[5] = 7;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_CODEC);
}

static void test_unknown_dictionary(void **state)
{
    fx_t *fx = *state;
    put32(fx->frame + 8, 123456);
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_DICT);
}

static void test_checksum_mismatch(void **state)
{
    fx_t *fx = *state;
    fx->frame[fx->len / 2] ^= 0x40;
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_CHECKSUM);
}

static void test_decompression_failure(void **state)
{
    fx_t *fx = *state;
    /* garbage that is not a zstd frame, with a valid checksum */
    memset(fx->frame + EDR_FRAME_HEADER_SIZE, 0xA5, fx->len - EDR_FRAME_HEADER_SIZE);
    reseal(fx->frame, fx->len);
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_DECOMPRESS);
}

static void test_length_mismatch(void **state)
{
    fx_t *fx = *state;
    uint32_t raw;
    memcpy(&raw, fx->frame + 12, 4);
    put32(fx->frame + 12, raw + 1); /* header claims one byte more than zstd holds */
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_LENGTH);
    /* trailing bytes after a whole frame */
    uint8_t *longer = calloc(1, fx->len + 4);
    put32(fx->frame + 12, raw);
    memcpy(longer, fx->frame, fx->len);
    assert_int_equal(decode(fx, longer, fx->len + 4), EDR_EFRAME_LENGTH);
    free(longer);
}

static void test_zstd_bomb(void **state)
{
    fx_t *fx = *state;
    /* 32 MiB of zeros compresses to a few KiB; the header claims 100 bytes,
     * and the zstd frame omits its content size so only the bound stops it */
    size_t big = 32u << 20;
    uint8_t *zeros = calloc(1, big);
    size_t cap = ZSTD_compressBound(big);
    uint8_t *f = malloc(EDR_FRAME_HEADER_SIZE + cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t zl = ZSTD_compress2(cc, f + EDR_FRAME_HEADER_SIZE, cap, zeros, big);
    assert_false(ZSTD_isError(zl));
    assert_true(zl < 64 * 1024);
    memcpy(f, "EDRF", 4);
    f[4] = 1;
    f[5] = EDR_FRAME_CODEC_ZSTD;
    f[6] = EDR_FRAME_HEADER_SIZE;
    f[7] = 0;
    put32(f + 8, 0);
    put32(f + 12, 100);
    put32(f + 16, (uint32_t)zl);
    put32(f + 20, 0);
    reseal(f, EDR_FRAME_HEADER_SIZE + zl);
    assert_int_equal(decode(fx, f, EDR_FRAME_HEADER_SIZE + zl), EDR_EFRAME_LENGTH);
    ZSTD_freeCCtx(cc);
    free(zeros);
    free(f);
}

static void test_raw_length_bound(void **state)
{
    fx_t *fx = *state;
    put32(fx->frame + 12, 0xF0000000u); /* 3.75 GiB claimed: refused before allocating */
    assert_int_equal(decode(fx, fx->frame, fx->len), EDR_EFRAME_TOO_LARGE);
    edr_frame_opts_t o = {.max_raw_len = 1000};
    edr_frame_ctx_t *small = edr_frame_ctx_new(&o);
    put32(fx->frame + 12, 5000);
    Edr__V1__EventBatch *b;
    assert_int_equal(edr_frame_decode(small, fx->frame, fx->len, &b), EDR_EFRAME_TOO_LARGE);
    edr_frame_ctx_destroy(small);
}

static void test_protobuf_failure(void **state)
{
    fx_t *fx = *state;
    /* valid zstd of bytes that are not an EventBatch (field 5 with wire type 7) */
    uint8_t junk[64];
    memset(junk, 0x2F, sizeof(junk));
    edr_frame_ctx_t *c = edr_frame_ctx_new(NULL);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode_raw(c, junk, sizeof(junk), 0, &out, &len), 0);
    assert_int_equal(decode(fx, out, len), EDR_EFRAME_PROTOBUF);
    edr_frame_ctx_destroy(c);
}

static void test_bad_actor_reference(void **state)
{
    fx_t *fx = *state;
    /* an event naming actor 5 of a batch that has none */
    Edr__V1__Event ev = EDR__V1__EVENT__INIT, *evp = &ev;
    ev.actor = 5;
    Edr__V1__EventBatch b = EDR__V1__EVENT_BATCH__INIT;
    b.schema_version = 1;
    b.n_events = 1;
    b.events = &evp;
    uint8_t raw[64];
    size_t rl = protobuf_c_message_pack(&b.base, raw);
    edr_frame_ctx_t *c = edr_frame_ctx_new(NULL);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode_raw(c, raw, rl, 0, &out, &len), 0);
    assert_int_equal(decode(fx, out, len), EDR_EFRAME_PROTOBUF);
    edr_frame_ctx_destroy(c);
}

static void test_actor_table_shrinks_and_restores(void **state)
{
    fx_t *fx = *state;
    /* identities travel once per batch in the actor table; every event gets
     * its own back, and the caller's batch is left as it was */
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 1000, &fx->arena);
    /* each event owns its id buffers, as with malloc'd or unpacked events:
     * after encoding, each must still point at its own (never at another
     * event's copy of the same id, which a caller would then free twice) */
    const uint8_t **own_id = calloc(b->n_events, sizeof(*own_id));
    const uint8_t **own_parent = calloc(b->n_events, sizeof(*own_parent));
    for (size_t i = 0; i < b->n_events; i++) {
        own_id[i] = b->events[i]->entity_id.data;
        own_parent[i] = b->events[i]->parent_entity_id.data;
    }
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &len), 0);
    for (size_t i = 0; i < b->n_events; i++) {
        assert_ptr_equal(b->events[i]->entity_id.data, own_id[i]);
        assert_ptr_equal(b->events[i]->parent_entity_id.data, own_parent[i]);
    }
    free(own_id);
    free(own_parent);
    uint8_t *f = malloc(len);
    memcpy(f, out, len);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(fx->ctx, f, len, &d), 0);
    assert_int_equal(d->n_actors, 0);
    for (size_t i = 0; i < d->n_events; i++) {
        assert_int_equal(d->events[i]->entity_id.len, 16);
        assert_memory_equal(d->events[i]->entity_id.data, b->events[i]->entity_id.data, 16);
        assert_int_equal(d->events[i]->pid, b->events[i]->pid);
        assert_int_equal(d->events[i]->actor, 0);
        /* the caller's batch is as it was */
        assert_int_equal(b->events[i]->entity_id.len, 16);
        assert_int_equal(b->events[i]->actor, 0);
    }
    free(f);
}

static void test_unknown_schema_version(void **state)
{
    fx_t *fx = *state;
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 2, 5, &fx->arena);
    b->schema_version = 2;
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &len), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, out, len);
    assert_int_equal(decode(fx, copy, len), EDR_EFRAME_SCHEMA);
    free(copy);
}

static void test_dictionary_roundtrip(void **state)
{
    fx_t *fx = *state;
    /* train on 300 small batches, then encode with the dictionary */
    size_t cap = 4 << 20, used = 0, lens[300];
    uint8_t *samples = malloc(cap);
    for (int i = 0; i < 300; i++) {
        Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, (uint32_t)(i % 3), 50, &fx->arena);
        lens[i] = protobuf_c_message_pack(&b->base, samples + used);
        used += lens[i];
        edr_arena_reset(&fx->arena);
    }
    uint8_t dict[16384];
    long dl = edr_dict_train(dict, sizeof(dict), samples, lens, 300);
    assert_true(dl > 0);
    edr_dict_t *d = edr_dict_new(dict, (size_t)dl, 3);
    assert_non_null(d);
    uint32_t id = edr_dict_id(d);
    assert_int_equal(edr_frame_ctx_add_dict(fx->ctx, d), 0);
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 0, 50, &fx->arena);
    const uint8_t *out;
    size_t len;
    assert_int_equal(edr_frame_encode(fx->ctx, b, id, &out, &len), 0);
    uint8_t *f = malloc(len);
    memcpy(f, out, len);
    Edr__V1__EventBatch *dec;
    assert_int_equal(edr_frame_decode(fx->ctx, f, len, &dec), 0);
    assert_int_equal(dec->n_events, 50);
    /* a large batch is split and compressed with the same dictionary */
    Edr__V1__EventBatch *big = edr_synth_next_batch(fx->synth, 1, 1000, &fx->arena);
    size_t fbl;
    assert_int_equal(edr_frame_encode(fx->ctx, big, id, &out, &fbl), 0);
    assert_int_equal(out[5], EDR_FRAME_CODEC_ZSTD_SPLIT);
    assert_direct_split_identical(fx->ctx, big, id);
    assert_int_equal(edr_frame_encode(fx->ctx, big, id, &out, &fbl), 0);
    uint32_t used_id;
    memcpy(&used_id, out + 8, 4);
    assert_int_equal(used_id, id);
    uint8_t *fb = malloc(fbl);
    memcpy(fb, out, fbl);
    assert_int_equal(edr_frame_decode(fx->ctx, fb, fbl, &dec), 0);
    assert_int_equal(dec->n_events, 1000);
    /* a context without the dictionary names the problem */
    edr_frame_ctx_t *other = edr_frame_ctx_new(NULL);
    assert_int_equal(edr_frame_decode(other, fb, fbl, &dec), EDR_EFRAME_DICT);
    free(fb);
    assert_int_equal(edr_frame_decode(other, f, len, &dec), EDR_EFRAME_DICT);
    /* encoding with an unknown dictionary id is refused */
    assert_int_equal(edr_frame_encode(other, b, id, &out, &len), EDR_EFRAME_DICT);
    edr_frame_ctx_destroy(other);
    assert_null(edr_dict_new("not a dictionary", 16, 3));
    free(f);
    free(samples);
}

static void test_frame_walk(void **state)
{
    fx_t *fx = *state;
    uint8_t *two = malloc(fx->len * 2);
    memcpy(two, fx->frame, fx->len);
    memcpy(two + fx->len, fx->frame, fx->len);
    assert_int_equal(edr_frame_len(two, fx->len * 2), fx->len);
    assert_int_equal(edr_frame_len(two + fx->len, fx->len), fx->len);
    assert_int_equal(edr_frame_len(two, 5), 0);
    free(two);
}

/* ---- codec 2: the field-wise split form ---- */

/* A frame of a 1,000-event batch (split) in a fresh buffer; *raw_len gets
 * the serialized length. */
static uint8_t *big_frame(fx_t *fx, edr_frame_ctx_t *c, size_t *len)
{
    Edr__V1__EventBatch *b = edr_synth_next_batch(fx->synth, 2, 1000, &fx->arena);
    const uint8_t *out;
    assert_int_equal(edr_frame_encode(c, b, 0, &out, len), 0);
    uint8_t *f = malloc(*len);
    memcpy(f, out, *len);
    return f;
}

static void test_split_codec(void **state)
{
    fx_t *fx = *state;
    edr_frame_opts_t uo = {.unsplit = 1};
    edr_frame_ctx_t *u = edr_frame_ctx_new(&uo);
    /* the same batch both ways: same synthetic stream, same seed */
    edr_synth_opts_t so = {.hosts = 3, .seed = 11};
    edr_synth_t *s1 = edr_synth_new(&so), *s2 = edr_synth_new(&so);
    Edr__V1__EventBatch *b1 = edr_synth_next_batch(s1, 0, 1000, &fx->arena);
    Edr__V1__EventBatch *b2 = edr_synth_next_batch(s2, 0, 1000, &fx->arena);
    const uint8_t *o1, *o2;
    size_t l1, l2;
    assert_int_equal(edr_frame_encode(fx->ctx, b1, 0, &o1, &l1), 0);
    uint8_t *f1 = malloc(l1);
    memcpy(f1, o1, l1);
    assert_int_equal(edr_frame_encode(u, b2, 0, &o2, &l2), 0);
    assert_int_equal(f1[5], EDR_FRAME_CODEC_ZSTD_SPLIT);
    assert_int_equal(o2[5], EDR_FRAME_CODEC_ZSTD);
    assert_true(l1 * 100 < l2 * 90); /* at least 10 % smaller */
    /* both decode to byte-identical serialized batches */
    const uint8_t *r1, *r2;
    size_t rl1, rl2;
    assert_int_equal(edr_frame_unwrap(fx->ctx, f1, l1, &r1, &rl1), 0);
    assert_int_equal(edr_frame_unwrap(u, o2, l2, &r2, &rl2), 0);
    assert_int_equal(rl1, rl2);
    assert_memory_equal(r1, r2, rl1);
    Edr__V1__EventBatch *d;
    assert_int_equal(edr_frame_decode(u, f1, l1, &d), 0); /* any reader takes codec 2 */
    assert_int_equal(d->n_events, 1000);
    /* small batches stay codec 1: dictionaries suit them better */
    Edr__V1__EventBatch *sm = edr_synth_next_batch(s1, 1, 50, &fx->arena);
    assert_int_equal(edr_frame_encode(fx->ctx, sm, 0, &o1, &l1), 0);
    assert_int_equal(o1[5], EDR_FRAME_CODEC_ZSTD);
    /* bytes that are not protobuf are sent as they are, never lost */
    uint8_t junk[20000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7 + 0xF0); /* wire type 7 in the first key: not protobuf */
    assert_int_equal(edr_frame_encode_raw(fx->ctx, junk, sizeof(junk), 0, &o1, &l1), 0);
    assert_int_equal(o1[5], EDR_FRAME_CODEC_ZSTD);
    assert_int_equal(edr_frame_unwrap(fx->ctx, o1, l1, &r1, &rl1), 0);
    assert_int_equal(rl1, sizeof(junk));
    assert_memory_equal(r1, junk, sizeof(junk));
    free(f1);
    edr_synth_destroy(s1);
    edr_synth_destroy(s2);
    edr_frame_ctx_destroy(u);
}

/* Decompresses a codec-2 frame's payload into a fresh buffer. */
static uint8_t *split_form(const uint8_t *f, size_t len, size_t *n)
{
    const uint8_t *p = f + EDR_FRAME_HEADER_SIZE;
    size_t pl = len - EDR_FRAME_HEADER_SIZE;
    unsigned long long cs = ZSTD_getFrameContentSize(p, pl);
    uint8_t *out = malloc(cs);
    *n = ZSTD_decompress(out, cs, p, pl);
    assert_int_equal(*n, cs);
    return out;
}

/* A frame whose payload is the given split form, header otherwise kept. */
static uint8_t *with_split_form(const uint8_t *f, const uint8_t *form, size_t n, size_t *len)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *out = malloc(EDR_FRAME_HEADER_SIZE + bound);
    memcpy(out, f, EDR_FRAME_HEADER_SIZE);
    size_t z = ZSTD_compress(out + EDR_FRAME_HEADER_SIZE, bound, form, n, 1);
    put32(out + 16, (uint32_t)z);
    *len = EDR_FRAME_HEADER_SIZE + z;
    reseal(out, *len);
    return out;
}

/* Decoding frame f with its payload replaced by the split form gives want. */
static void expect_form(fx_t *fx, const uint8_t *f, const uint8_t *form, size_t n, int want)
{
    size_t bl;
    uint8_t *g = with_split_form(f, form, n, &bl);
    assert_int_equal(decode(fx, g, bl), want);
    free(g);
}

static void test_split_form_defects(void **state)
{
    fx_t *fx = *state;
    size_t len, n, bl;
    uint8_t *f = big_frame(fx, fx->ctx, &len);
    assert_int_equal(f[5], EDR_FRAME_CODEC_ZSTD_SPLIT);
    uint8_t *form = split_form(f, len, &n);
    uint8_t *bad = malloc(n + 8);
    uint8_t *g;
    expect_form(fx, f, form, n, 0); /* unchanged: decodes */
    memcpy(bad, form, n);
    bad[0] = 9; /* unknown split version */
    expect_form(fx, f, bad, n, EDR_EFRAME_PROTOBUF);
    expect_form(fx, f, form, n - 1, EDR_EFRAME_PROTOBUF); /* one byte short */
    memcpy(bad, form, n);
    bad[n] = 0; /* one byte too many */
    expect_form(fx, f, bad, n + 1, EDR_EFRAME_PROTOBUF);
    memcpy(bad, form, n);
    bad[1] = 0; /* no nodes */
    expect_form(fx, f, bad, n, EDR_EFRAME_PROTOBUF);
    memcpy(bad, form, n);
    bad[2] = 1; /* node 1's parent: itself */
    expect_form(fx, f, bad, n, EDR_EFRAME_PROTOBUF);
    /* the header claims another length than the form joins into */
    uint8_t *h = with_split_form(f, form, n, &bl);
    uint32_t raw;
    memcpy(&raw, h + 12, 4);
    put32(h + 12, raw - 1);
    reseal(h, bl);
    assert_int_equal(decode(fx, h, bl), EDR_EFRAME_LENGTH);
    put32(h + 12, raw + 1);
    reseal(h, bl);
    assert_int_equal(decode(fx, h, bl), EDR_EFRAME_LENGTH);
    free(h);
    /* every single-byte change of the first 4 KiB: rejected or decoded, never
     * a crash; a decoded one is a whole, valid batch */
    int rejected = 0;
    for (size_t i = 0; i < n && i < 4096; i++) {
        memcpy(bad, form, n);
        bad[i] ^= (uint8_t)(0x5A + i);
        g = with_split_form(f, bad, n, &bl);
        Edr__V1__EventBatch *b;
        int rc = edr_frame_decode(fx->ctx, g, bl, &b);
        if (rc)
            rejected++;
        else
            assert_int_equal(b->schema_version, 1);
        assert_unpacks_alike(g, bl, -1); /* direct or joined: the same verdict */
        free(g);
    }
    assert_true(rejected > 0);
    free(bad);
    free(form);
    free(f);
}

/* Reads a varint of a split form (tests: the form is well made). */
static uint64_t rd_uv(const uint8_t **p)
{
    uint64_t v = 0;
    for (unsigned sh = 0;; sh += 7) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) return v;
    }
}

/* Where the directory of split form 2 says each stream's entries and bytes
 * are: dir[i] the offset of stream i's form varint, at[i] of its values. */
static size_t form_streams(const uint8_t *form, size_t *dir, size_t *at, size_t *vlen,
                           uint64_t *kind, size_t *lenoff)
{
    const uint8_t *p = form;
    assert_int_equal(rd_uv(&p), 2);
    uint64_t nn = rd_uv(&p);
    for (uint64_t i = 1; i < nn; i++) {
        rd_uv(&p);
        rd_uv(&p);
    }
    uint64_t ns = rd_uv(&p), ll[256];
    for (uint64_t i = 0; i < ns; i++) {
        rd_uv(&p);
        rd_uv(&p);
        lenoff[i] = (size_t)(p - form);
        ll[i] = rd_uv(&p);
        vlen[i] = rd_uv(&p);
        dir[i] = (size_t)(p - form);
        kind[i] = rd_uv(&p);
    }
    size_t tags = 0;
    for (uint64_t i = 0; i < nn; i++)
        tags += rd_uv(&p);
    size_t off = (size_t)(p - form) + tags;
    for (uint64_t i = 0; i < ns; i++) {
        at[i] = off + ll[i];
        off += ll[i] + vlen[i];
    }
    return ns;
}

/* Split form 2 (2026-12-06): varint streams of multi-byte values as byte
 * planes. A 1,000-event batch is smaller with them, decodes to the same
 * bytes as split form 1 (frame.split_planes=false, which readers of before
 * take) and as codec 1; damaged planes are refused, never a crash, and the
 * direct and joined decoders agree on every one-byte change of them. */
static void test_split_planes(void **state)
{
    fx_t *fx = *state;
    edr_frame_opts_t o1 = {.split_v1 = 1};
    edr_frame_ctx_t *v1 = edr_frame_ctx_new(&o1);
    edr_synth_opts_t so = {.hosts = 3, .seed = 5};
    edr_synth_t *s1 = edr_synth_new(&so), *s2 = edr_synth_new(&so);
    Edr__V1__EventBatch *b1 = edr_synth_next_batch(s1, 1, 1000, &fx->arena);
    Edr__V1__EventBatch *b2 = edr_synth_next_batch(s2, 1, 1000, &fx->arena);
    const uint8_t *o;
    size_t l2, l1, n2, n1;
    assert_int_equal(edr_frame_encode(fx->ctx, b1, 0, &o, &l2), 0);
    uint8_t *f2 = malloc(l2);
    memcpy(f2, o, l2);
    assert_int_equal(edr_frame_encode(v1, b2, 0, &o, &l1), 0);
    uint8_t *f1 = malloc(l1);
    memcpy(f1, o, l1);
    uint8_t *form2 = split_form(f2, l2, &n2), *form1 = split_form(f1, l1, &n1);
    assert_int_equal(form2[0], 2);
    assert_int_equal(form1[0], 1);
    print_message("1,000 events: split form 1 %zu bytes, form 2 %zu\n", l1, l2);
    assert_true(l2 < l1);
    const uint8_t *r;
    size_t rl;
    uint8_t *raw1;
    assert_int_equal(edr_frame_unwrap(v1, f1, l1, &r, &rl), 0);
    raw1 = malloc(rl);
    memcpy(raw1, r, rl);
    size_t rl1 = rl;
    assert_int_equal(edr_frame_unwrap(v1, f2, l2, &r, &rl), 0); /* any reader takes both */
    assert_int_equal(rl, rl1);
    assert_memory_equal(r, raw1, rl);
    assert_unpacks_alike(f2, l2, 1);
    assert_unpacks_alike(f1, l1, 1);
    /* the streams in planes: the event times among them */
    size_t dir[256], at[256], vlen[256], lenoff[256];
    uint64_t kind[256];
    size_t ns = form_streams(form2, dir, at, vlen, kind, lenoff), np = 0, first = 0;
    for (size_t i = 0; i < ns; i++)
        if (kind[i] == 1 && !np++) first = i;
    assert_true(np >= 2);
    uint8_t *bad = malloc(n2);
    size_t bl;
    const struct {
        size_t off;
        uint8_t val;
    } edits[] = {
        {dir[first], 2},    /* no such form */
        {at[first] + 1, 0}, /* width 0 */
        {at[first] + 1, 9}, /* width past 8 */
        {at[first], 0},     /* a count that does not fill the stream (its first byte) */
        {lenoff[first], 1}, /* a planes stream with lengths (one of its bytes) */
    };
    for (size_t k = 0; k < sizeof(edits) / sizeof(edits[0]); k++) {
        memcpy(bad, form2, n2);
        bad[edits[k].off] = edits[k].val;
        if (edits[k].off == lenoff[first]) { /* the byte taken from its values: same total */
            assert_int_equal(form2[lenoff[first]], 0);
            assert_true((form2[lenoff[first] + 1] & 0x7f) != 0);
            bad[lenoff[first] + 1]--;
        }
        uint8_t *g = with_split_form(f2, bad, n2, &bl);
        assert_int_not_equal(decode(fx, g, bl), 0);
        assert_unpacks_alike(g, bl, -1);
        free(g);
    }
    /* values made wider than the message can hold: the join's length */
    memcpy(bad, form2, n2);
    {
        const uint8_t *p = form2 + at[first];
        uint64_t count = rd_uv(&p);
        size_t w = *p++, top = (size_t)(p - form2) + (w - 1) * count;
        for (size_t i = 0; i < count; i++)
            bad[top + i] = 0xff;
    }
    uint8_t *g = with_split_form(f2, bad, n2, &bl);
    int rc = decode(fx, g, bl);
    assert_true(rc == EDR_EFRAME_LENGTH || rc == EDR_EFRAME_PROTOBUF);
    assert_unpacks_alike(g, bl, -1);
    free(g);
    /* every one-byte change of the first planes stream: refused or a whole batch */
    for (size_t i = at[first]; i < at[first] + vlen[first]; i++) {
        memcpy(bad, form2, n2);
        bad[i] ^= (uint8_t)(0x5A + i);
        g = with_split_form(f2, bad, n2, &bl);
        Edr__V1__EventBatch *b;
        if (edr_frame_decode(fx->ctx, g, bl, &b) == 0) assert_int_equal(b->n_events, 1000);
        assert_unpacks_alike(g, bl, -1);
        free(g);
    }
    free(bad);
    free(raw1);
    free(form1);
    free(form2);
    free(f1);
    free(f2);
    /* one clock step among 1 ns deltas: planes would give every delta the
     * step's 8 bytes, a form past what readers take (review-1206h H1: the
     * frame could not be read); the stream stays varints */
    edr_arena_reset(&fx->arena);
    Edr__V1__EventBatch *st = edr_synth_next_batch(s1, 2, 12000, &fx->arena);
    for (size_t i = 0; i < st->n_events; i++)
        st->events[i]->time_offset_ns = (int64_t)i + (i >= 6000 ? (1ll << 50) : 0);
    assert_int_equal(edr_frame_encode(fx->ctx, st, 0, &o, &l2), 0);
    Edr__V1__EventBatch *back;
    assert_int_equal(edr_frame_decode(fx->ctx, o, l2, &back), 0);
    assert_int_equal(back->n_events, 12000);
    assert_int_equal(back->events[6000]->time_offset_ns, 6000 + (1ll << 50));
    edr_synth_destroy(s1);
    edr_synth_destroy(s2);
    edr_frame_ctx_destroy(v1);
}

/* The direct split writer against serialize-then-split, on what sensors
 * send: synthetic batches of many sizes and hosts (with attack chains), the
 * seed batch of running processes, batches below the split threshold (sent
 * unsplit either way), a dictionary, and a context that splits every size. */
static void test_direct_split_identical(void **state)
{
    fx_t *fx = *state;
    edr_synth_opts_t so = {.hosts = 7, .seed = 42};
    edr_synth_t *sy = edr_synth_new(&so);
    assert_non_null(sy);
    for (uint32_t i = 0; i < 3; i++) {
        edr_synth_attack_spec_t spec = {.kind = (edr_synth_attack_kind_t)(1 + i), .host = i,
                                        .target_host = i + 3, .depth = 3, .after_events = 200};
        assert_true(edr_synth_add_attack(sy, &spec) >= 0);
    }
    const size_t sizes[] = {1, 10, 50, 300, 1000, 3000, 8000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (uint32_t h = 0; h < 7; h++) {
            edr_arena_reset(&fx->arena);
            Edr__V1__EventBatch *b = edr_synth_next_batch(sy, h, sizes[k], &fx->arena);
            assert_direct_split_identical(fx->ctx, b, 0);
            const uint8_t *out;
            size_t len;
            assert_int_equal(edr_frame_encode(fx->ctx, b, 0, &out, &len), 0);
            assert_unpacks_alike(out, len, 1); /* split from 300 events, unsplit below */
        }
    edr_arena_reset(&fx->arena);
    assert_direct_split_identical(fx->ctx, edr_synth_seed_batch(sy, 2, &fx->arena), 0);
    edr_frame_opts_t all = {.split_min = 1};
    edr_frame_ctx_t *c = edr_frame_ctx_new(&all);
    for (uint32_t h = 0; h < 7; h++) {
        edr_arena_reset(&fx->arena);
        Edr__V1__EventBatch *b = edr_synth_next_batch(sy, h, 1 + h * 3, &fx->arena);
        assert_direct_split_identical(c, b, 0);
        const uint8_t *out;
        size_t len;
        assert_int_equal(edr_frame_encode(c, b, 0, &out, &len), 0);
        assert_unpacks_alike(out, len, 1);
    }
    edr_frame_ctx_destroy(c);
    edr_synth_destroy(sy);
}

/* Sets every field of message m (descriptor d) to a value that is not its
 * default, from the arena: scalars 1 (enums their second value), strings
 * "x", bytes 2 bytes, one element of each repeated field, submessages filled
 * likewise (depth-limited). Oneof members are left to the caller. */
static void fill_all(ProtobufCMessage *m, const ProtobufCMessageDescriptor *d, edr_arena_t *a,
                     int depth)
{
    protobuf_c_message_init(d, m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            continue;
        size_t sz;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: sz = sizeof(char *); break;
        case PROTOBUF_C_TYPE_BYTES: sz = sizeof(ProtobufCBinaryData); break;
        case PROTOBUF_C_TYPE_MESSAGE: sz = sizeof(void *); break;
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
            sz = 8; break;
        case PROTOBUF_C_TYPE_BOOL: sz = sizeof(protobuf_c_boolean); break;
        default: sz = 4; break;
        }
        uint8_t *slot = (uint8_t *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            void *arr = edr_arena_alloc(a, sz);
            *(size_t *)((uint8_t *)m + f->quantifier_offset) = 1;
            *(void **)slot = arr;
            slot = arr;
        }
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: *(char **)slot = (char *)"x"; break;
        case PROTOBUF_C_TYPE_BYTES: {
            ProtobufCBinaryData b = {2, (uint8_t *)"\x01\x02"};
            *(ProtobufCBinaryData *)slot = b;
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE:
            if (depth < 3) {
                const ProtobufCMessageDescriptor *sd = f->descriptor;
                ProtobufCMessage *sm = edr_arena_alloc(a, sd->sizeof_message);
                fill_all(sm, sd, a, depth + 1);
                *(void **)slot = sm;
            }
            break;
        case PROTOBUF_C_TYPE_ENUM: {
            const ProtobufCEnumDescriptor *ed = f->descriptor;
            *(int *)slot = ed->n_values > 1 ? ed->values[1].value : ed->values[0].value;
            break;
        }
        case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)slot = 1; break;
        default:
            if (sz == 8)
                *(uint64_t *)slot = 1;
            else
                *(uint32_t *)slot = 1;
        }
    }
}

/* The hand-written serializer (event_pack.c) writes every field of every
 * event body as protobuf-c does: a field added to the schema and not to the
 * writer would be lost silently in every frame (ProcessStart's fields 16-20
 * were, until this test). One event per body, every field set. */
static void test_hand_writer_every_field(void **state)
{
    fx_t *fx = *state;
    edr_arena_reset(&fx->arena);
    const ProtobufCMessageDescriptor *ed = &edr__v1__event__descriptor;
    Edr__V1__EventBatch *b = edr_arena_alloc(&fx->arena, sizeof(*b));
    fill_all(&b->base, &edr__v1__event_batch__descriptor, &fx->arena, 1);
    b->events = edr_arena_alloc(&fx->arena, ed->n_fields * sizeof(*b->events));
    b->n_events = 0;
    for (unsigned i = 0; i < ed->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &ed->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        Edr__V1__Event *e = edr_arena_alloc(&fx->arena, sizeof(*e));
        fill_all(&e->base, ed, &fx->arena, 1);
        ProtobufCMessage *body = edr_arena_alloc(&fx->arena, f->descriptor == NULL ? 8 :
            ((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message);
        fill_all(body, f->descriptor, &fx->arena, 1);
        *(void **)((uint8_t *)e + f->offset) = body;
        *(uint32_t *)((uint8_t *)e + f->quantifier_offset) = f->id;
        b->events[b->n_events++] = e;
    }
    assert_true(b->n_events >= 10);
    size_t want_len = edr__v1__event_batch__get_packed_size(b);
    uint8_t *want = malloc(want_len);
    edr__v1__event_batch__pack(b, want);
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t len = edr__batch_pack(&buf, &cap, 1 << 20, b);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    free(buf);
    free(want);
}

/* Every single-byte change of the first 4 KiB of a serialized batch, sent
 * unsplit: the direct unpack and protobuf-c give the same verdict. */
static void test_unsplit_unpack_corruptions(void **state)
{
    fx_t *fx = *state;
    edr_frame_opts_t none = {.unsplit = 1};
    edr_frame_ctx_t *u = edr_frame_ctx_new(&none);
    const uint8_t *raw, *out;
    size_t raw_len, len;
    assert_int_equal(edr_frame_unwrap(u, fx->frame, fx->len, &raw, &raw_len), 0);
    uint8_t *bad = malloc(raw_len);
    int rejected = 0;
    for (size_t i = 0; i < raw_len && i < 4096; i++) {
        memcpy(bad, raw, raw_len);
        bad[i] ^= (uint8_t)(0x5A + i);
        assert_int_equal(edr_frame_encode_raw(u, bad, raw_len, 0, &out, &len), 0);
        uint8_t *g = malloc(len);
        memcpy(g, out, len);
        Edr__V1__EventBatch *b;
        rejected += edr_frame_decode(u, g, len, &b) != 0;
        assert_unpacks_alike(g, len, -1);
        free(g);
    }
    assert_true(rejected > 0);
    free(bad);
    edr_frame_ctx_destroy(u);
}

/* What the direct unpacks decline (over-long keys or length prefixes,
 * unknown fields, a oneof or a submessage given twice, a wrong wire type),
 * split or not, goes to protobuf-c, which decides as it always did: a
 * refusal, kept unknown fields, the last oneof member, merged submessages. */
static void test_split_unpack_declines(void **state)
{
    (void)state;
    edr_frame_opts_t all = {.split_min = 1};
    edr_frame_ctx_t *c = edr_frame_ctx_new(&all);
    /* EventBatch{schema_version 1, sensor{hostname "a"}, events[{...}]} */
    static const uint8_t unknown[] = {0x08, 1,    0x12, 3, 0x12, 1, 'a',
                                      0x2a, 5,    0x08, 2, /* event field 99: */
                                      0x98, 0x06, 7};
    static const uint8_t oneof_twice[] = {0x08, 1, 0x12, 3,    0x12, 1, 'a', 0x2a, 9,
                                          0x7a, 2, 0x0a, 0, /* file_write, file_delete */
                                          0x8a, 0x01, 2, 0x0a, 0};
    static const uint8_t sensor_twice[] = {0x08, 1,    0x12, 3, 0x12, 1,
                                           'a',  0x12, 3,    0x22, 1, 'b'};
    static const uint8_t wrong_type[] = {0x08, 1, 0x12, 3,    0x12, 1, 'a', 0x2a, 2,
                                         0x78, 0}; /* file_write as a varint */
    /* keys and length prefixes longer than protobuf-c reads (5 bytes) */
    static const uint8_t long_key[] = {0x08, 1,    0x12, 3,    0x12, 1,    'a',  0x2a,
                                       7,    0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 2};
    static const uint8_t long_len[] = {0x08, 1,    0x12, 7,    0x12, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x00};
    static const struct {
        const uint8_t *raw;
        size_t n;
        int want;
    } cases[] = {{long_key, sizeof(long_key), EDR_EFRAME_PROTOBUF},
                 {long_len, sizeof(long_len), EDR_EFRAME_PROTOBUF},
                 {unknown, sizeof(unknown), 0},
                 {oneof_twice, sizeof(oneof_twice), 0},
                 {sensor_twice, sizeof(sensor_twice), 0},
                 {wrong_type, sizeof(wrong_type), EDR_EFRAME_PROTOBUF}};
    edr_frame_opts_t none = {.unsplit = 1};
    edr_frame_ctx_t *u = edr_frame_ctx_new(&none);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *out;
        size_t len;
        assert_int_equal(edr_frame_encode_raw(u, cases[i].raw, cases[i].n, 0, &out, &len), 0);
        assert_int_equal(out[5], EDR_FRAME_CODEC_ZSTD);
        assert_unpacks_alike(out, len, 0);
        assert_int_equal(edr_frame_encode_raw(c, cases[i].raw, cases[i].n, 0, &out, &len), 0);
        assert_int_equal(out[5], EDR_FRAME_CODEC_ZSTD_SPLIT);
        assert_unpacks_alike(out, len, 0);
        Edr__V1__EventBatch *b;
        assert_int_equal(edr_frame_decode(c, out, len, &b), cases[i].want);
        if (i == 2)
            assert_int_equal(b->events[0]->base.n_unknown_fields, 1);
        if (i == 3)
            assert_int_equal(b->events[0]->body_case, EDR__V1__EVENT__BODY_FILE_DELETE);
        if (i == 4) {
            assert_string_equal(b->sensor->hostname, "a");
            assert_string_equal(b->sensor->os, "b");
        }
    }
    edr_frame_ctx_destroy(u);
    edr_frame_ctx_destroy(c);
}

/* Hand-made split forms: a key whose value stream is empty is refused, not
 * joined into a key without a value. */
static void test_split_form_by_hand(void **state)
{
    (void)state;
    edr_pbsplit_t *ps = edr__pbsplit_new();
    uint8_t out[1 + EDR_PBJOIN_SLACK];
    /* version 1; one node; one stream (node 0, field 1, no lengths, no
     * values); node 0's tags: 2 bytes; tags: key 0x08 (field 1 varint), end */
    const uint8_t empty[] = {1, 1, 1, 0, 1, 0, 0, 2, 0x08, 0};
    assert_int_equal(edr__pbjoin(ps, empty, sizeof(empty), out, 1), EDR_EFRAME_PROTOBUF);
    /* the same with the value 5: joins into 08 05 */
    const uint8_t five[] = {1, 1, 1, 0, 1, 0, 1, 2, 0x08, 0, 5};
    uint8_t out2[2 + EDR_PBJOIN_SLACK];
    assert_int_equal(edr__pbjoin(ps, five, sizeof(five), out2, 2), 0);
    assert_int_equal(out2[0], 0x08);
    assert_int_equal(out2[1], 5);
    assert_int_equal(edr__pbjoin(ps, five, sizeof(five), out2, 1), EDR_EFRAME_LENGTH);
    edr__pbsplit_free(ps);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(edr_err_name(EDR_EFRAME_CHECKSUM), "FRAME_CHECKSUM");
    assert_string_equal(edr_strerror(EDR_EFRAME_TRUNCATED), "frame truncated");
    assert_string_equal(edr_strerror(-9999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_matches_protobuf_c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncompressed_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_dictionary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decompression_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_length_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protobuf_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_actor_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_table_shrinks_and_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_form_defects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_planes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_split_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_writer_every_field, setup, teardown),
        cmocka_unit_test(test_split_unpack_declines),
        cmocka_unit_test_setup_teardown(test_unsplit_unpack_corruptions, setup, teardown),
        cmocka_unit_test(test_split_form_by_hand),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
