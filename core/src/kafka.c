/* Kafka helpers over librdkafka, including the embedded mock cluster. */
#include "edr/kafka.h"
#include "edr/err.h"
#include "edr/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const topic_names[EDR_TOPIC__COUNT] = {
    "edr.telemetry.v1", "edr.actions.v1", "edr.action-results.v1", "edr.incidents.v1",
    "edr.deadletter.v1"};

const char *edr_topic_base(edr_topic_t t)
{
    return (t >= 0 && t < EDR_TOPIC__COUNT) ? topic_names[t] : "edr.unknown";
}

const char *edr_topic_name(const edr_config_t *cfg, edr_topic_t t, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", cfg ? edr_config_str(cfg, "kafka.topic_prefix") : "",
             edr_topic_base(t));
    return buf;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    edr_log_level_t l = level <= 3 ? EDR_LOG_ERROR
                        : level == 4 ? EDR_LOG_WARN
                        : level <= 6 ? EDR_LOG_INFO
                                     : EDR_LOG_DEBUG;
    edr_log(l, "kafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

int edr_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                       size_t errlen)
{
    char rderr[256];
    if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka property %s: %s", key, rderr);
        return EDR_ECONFIG;
    }
    return 0;
}

struct pass_ctx {
    rd_kafka_conf_t *conf;
    char *err;
    size_t errlen;
};

static int pass_one(const char *key, const char *value, void *ud)
{
    struct pass_ctx *p = ud;
    return edr_kafka_conf_set(p->conf, key, value, p->err, p->errlen);
}

rd_kafka_conf_t *edr_kafka_conf_new(const edr_config_t *cfg, const char *bootstraps, char *err,
                                    size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (bootstraps && edr_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, errlen))
        goto fail;
    /* the embedded cluster never has IPv6 or many brokers: keep clients quiet and quick */
    if (edr_kafka_conf_set(conf, "log.connection.close", "false", err, errlen))
        goto fail;
    if (cfg) {
        struct pass_ctx p = {conf, err, errlen};
        if (edr_config_foreach(cfg, "kafka.properties.", pass_one, &p))
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                              size_t errlen)
{
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (!rk) {
        snprintf(err, errlen, "cannot create kafka client: %s", rderr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int edr_kafka_refused_for_good(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE || e == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

rd_kafka_t *edr_kafka_producer_new(const edr_config_t *cfg, const char *bootstraps,
                                   rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    if (!conf && !(conf = edr_kafka_conf_new(cfg, bootstraps, err, errlen)))
        return NULL;
    /* our defaults, then kafka.properties again so the user's values win */
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"}, {"acks", "all"},     {"linger.ms", "5"},
        {"compression.type", "none"}, /* frames are already zstd */
        {"message.max.bytes", "67108864"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (edr_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, errlen)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (cfg) { /* re-apply pass-through so the user's values win over our defaults */
        struct pass_ctx p = {conf, err, errlen};
        if (edr_config_foreach(cfg, "kafka.properties.", pass_one, &p)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return client_new(RD_KAFKA_PRODUCER, conf, err, errlen);
}

rd_kafka_t *edr_kafka_consumer_new(const edr_config_t *cfg, const char *bootstraps,
                                   const char *group_id, rd_kafka_conf_t *conf, char *err,
                                   size_t errlen)
{
    if (!conf && !(conf = edr_kafka_conf_new(cfg, bootstraps, err, errlen)))
        return NULL;
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"fetch.message.max.bytes", "67108864"},
        {"enable.partition.eof", "false"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (edr_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, errlen)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (group_id && edr_kafka_conf_set(conf, "group.id", group_id, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (cfg) {
        struct pass_ctx p = {conf, err, errlen};
        if (edr_config_foreach(cfg, "kafka.properties.", pass_one, &p)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (rk)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

struct edr_kafka_cluster {
    rd_kafka_t *rk; /* handle that owns the mock cluster */
    rd_kafka_mock_cluster_t *mock;
    char *bootstraps;
};

edr_kafka_cluster_t *edr_kafka_cluster_new(const edr_config_t *cfg, int brokers, int partitions,
                                           char *err, size_t errlen)
{
    edr_kafka_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    /* this handle only owns the cluster: it never connects, so no CONFWARN */
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    char rderr[256];
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!c->rk) {
        snprintf(err, errlen, "cannot start embedded kafka: %s", rderr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    c->mock = rd_kafka_mock_cluster_new(c->rk, brokers);
    if (!c->mock) {
        snprintf(err, errlen, "cannot start embedded kafka with %d brokers", brokers);
        goto fail;
    }
    c->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(c->mock));
    int repl = brokers < 3 ? brokers : 3;
    for (int t = 0; t < EDR_TOPIC__COUNT; t++) {
        char name[256];
        edr_topic_name(cfg, (edr_topic_t)t, name, sizeof(name));
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(c->mock, name, partitions, repl);
        if (e) {
            snprintf(err, errlen, "embedded kafka: cannot create topic %s: %s", name,
                     rd_kafka_err2str(e));
            goto fail;
        }
    }
    edr_log_debug("embedded kafka: %d brokers at %s", brokers, c->bootstraps);
    return c;
fail:
    edr_kafka_cluster_destroy(c);
    return NULL;
}

void edr_kafka_cluster_destroy(edr_kafka_cluster_t *c)
{
    if (!c)
        return;
    if (c->mock)
        rd_kafka_mock_cluster_destroy(c->mock);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c->bootstraps);
    free(c);
}

const char *edr_kafka_cluster_bootstraps(const edr_kafka_cluster_t *c)
{
    return c->bootstraps;
}

rd_kafka_mock_cluster_t *edr_kafka_cluster_mock(edr_kafka_cluster_t *c)
{
    return c->mock;
}

const char *edr_kafka_bootstraps(const edr_config_t *cfg, edr_kafka_cluster_t **embedded,
                                 char *err, size_t errlen)
{
    *embedded = NULL;
    const char *b = edr_config_str(cfg, "kafka.brokers");
    if (strcmp(b, "embedded") != 0)
        return b;
    *embedded = edr_kafka_cluster_new(cfg, (int)edr_config_int(cfg, "kafka.embedded.brokers"),
                                      (int)edr_config_int(cfg, "kafka.partitions"), err, errlen);
    return *embedded ? edr_kafka_cluster_bootstraps(*embedded) : NULL;
}
