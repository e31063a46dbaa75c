/* Integration: synthetic batches -> frames -> embedded Kafka -> consumer -> decode: identical,
 * per-host order preserved. 10,000 mixed events across 50 hosts. */
#include "edr_test.h"

#include "edr/arena.h"
#include "edr/frame.h"
#include "edr/kafka.h"
#include "edr/log.h"
#include "edr/synth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOSTS   50
#define EVENTS  10000
#define PER     20 /* events per batch: 500 batches, 10 per host */
#define BATCHES (EVENTS / PER)

typedef struct {
    uint8_t *packed;
    size_t len;
} sent_t;

static sent_t sent[HOSTS][BATCHES / HOSTS + 1];

static void test_roundtrip_through_kafka(void **state)
{
    (void)state;
    char err[512], topic[128];
    edr_config_t *cfg = edr_config_new();
    edr_kafka_cluster_t *cl = edr_kafka_cluster_new(cfg, 3, 8, err, sizeof(err));
    assert_non_null(cl);
    const char *boot = edr_kafka_cluster_bootstraps(cl);
    edr_topic_name(cfg, EDR_TOPIC_TELEMETRY, topic, sizeof(topic));
    assert_string_equal(topic, "edr.telemetry.v1");
    rd_kafka_t *prod = edr_kafka_producer_new(cfg, boot, NULL, err, sizeof(err));
    assert_non_null(prod);

    edr_synth_opts_t so = {.hosts = HOSTS, .seed = 99};
    edr_synth_t *s = edr_synth_new(&so);
    edr_frame_ctx_t *enc = edr_frame_ctx_new(NULL), *dec = edr_frame_ctx_new(NULL);
    edr_arena_t a;
    edr_arena_init(&a, 1 << 16);
    size_t kinds_seen = 0;
    uint64_t kinds = 0;
    for (int i = 0; i < BATCHES; i++) {
        uint32_t h = (uint32_t)(i % HOSTS);
        Edr__V1__EventBatch *b = edr_synth_next_batch(s, h, PER, &a);
        for (size_t k = 0; k < b->n_events; k++)
            kinds |= 1ull << b->events[k]->body_case;
        sent_t *st = &sent[h][b->seq - 1];
        st->len = protobuf_c_message_get_packed_size(&b->base);
        st->packed = malloc(st->len);
        protobuf_c_message_pack(&b->base, st->packed);
        const uint8_t *fr;
        size_t fl;
        assert_int_equal(edr_frame_encode(enc, b, 0, &fr, &fl), 0);
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                           RD_KAFKA_V_KEY(b->sensor->host_id.data, 16),
                                           RD_KAFKA_V_VALUE((void *)fr, fl),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         0);
        rd_kafka_poll(prod, 0);
        edr_arena_reset(&a);
    }
    for (int k = 0; k < 64; k++)
        kinds_seen += (kinds >> k) & 1;
    assert_true(kinds_seen >= 8); /* a real mix: starts, exits, files, network, dns ... */
    assert_int_equal(rd_kafka_flush(prod, 30000), 0);

    rd_kafka_t *cons = edr_kafka_consumer_new(cfg, boot, "test-0001", NULL, err, sizeof(err));
    assert_non_null(cons);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(cons, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);

    uint64_t last_seq[HOSTS] = {0};
    size_t got_events = 0, got_batches = 0;
    time_t deadline = time(NULL) + 60;
    while (got_batches < BATCHES && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
        if (!m)
            continue;
        assert_int_equal(m->err, 0);
        Edr__V1__EventBatch *b;
        assert_int_equal(edr_frame_decode(dec, m->payload, m->len, &b), 0);
        /* key = host id */
        assert_int_equal(m->key_len, 16);
        assert_memory_equal(m->key, b->sensor->host_id.data, 16);
        int h = atoi(b->sensor->hostname + 5);
        assert_true(h >= 0 && h < HOSTS);
        /* per-host order: sequence numbers arrive 1, 2, 3 ... */
        assert_int_equal(b->seq, last_seq[h] + 1);
        last_seq[h] = b->seq;
        /* identical: the decoded batch packs to the same bytes as the one sent */
        sent_t *st = &sent[h][b->seq - 1];
        uint8_t *again = malloc(protobuf_c_message_get_packed_size(&b->base));
        size_t al = protobuf_c_message_pack(&b->base, again);
        assert_int_equal(al, st->len);
        assert_memory_equal(again, st->packed, al);
        free(again);
        got_events += b->n_events;
        got_batches++;
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got_batches, BATCHES);
    assert_int_equal(got_events, EVENTS);
    for (int h = 0; h < HOSTS; h++)
        assert_int_equal(last_seq[h], BATCHES / HOSTS);

    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    edr_kafka_cluster_destroy(cl);
    for (int h = 0; h < HOSTS; h++)
        for (int i = 0; i < BATCHES / HOSTS; i++)
            free(sent[h][i].packed);
    edr_arena_close(&a);
    edr_frame_ctx_destroy(enc);
    edr_frame_ctx_destroy(dec);
    edr_synth_destroy(s);
    edr_config_destroy(cfg);
}

static void test_config_passthrough_errors(void **state)
{
    (void)state;
    /* a bad librdkafka property is reported by name, not swallowed */
    char err[512];
    edr_config_t *cfg = edr_config_new();
    assert_int_equal(edr_config_set(cfg, "kafka.properties.no.such.property", "1", "--set", err,
                                    sizeof(err)),
                     0);
    assert_null(edr_kafka_producer_new(cfg, "127.0.0.1:1", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no.such.property"));
    edr_config_destroy(cfg);
}

int main(void)
{
    edr_log_init("test-0001", EDR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_through_kafka),
        cmocka_unit_test(test_config_passthrough_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
