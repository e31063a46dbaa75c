/* Kafka helpers: topic names, producer/consumer from configuration, the embedded cluster. */
#ifndef EDR_KAFKA_H
#define EDR_KAFKA_H

#include "edr/config.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

typedef enum {
    EDR_TOPIC_TELEMETRY,      /* edr.telemetry.v1: frames, key = host id */
    EDR_TOPIC_ACTIONS,        /* edr.actions.v1: signed response actions */
    EDR_TOPIC_ACTION_RESULTS, /* edr.action-results.v1 */
    EDR_TOPIC_INCIDENTS,      /* edr.incidents.v1 */
    EDR_TOPIC_DEADLETTER,     /* edr.deadletter.v1: bad input with its reason */
    EDR_TOPIC__COUNT
} edr_topic_t;

/* Unprefixed topic name, e.g. "edr.telemetry.v1". */
const char *edr_topic_base(edr_topic_t t);
/* Full topic name with kafka.topic_prefix; writes into buf and returns it. */
const char *edr_topic_name(const edr_config_t *cfg, edr_topic_t t, char *buf, size_t len);

/* An embedded Kafka cluster (librdkafka's mock cluster): the real protocol on
 * loopback, in this process, with fault injection. All edr topics are created
 * with the configured partition count. */
typedef struct edr_kafka_cluster edr_kafka_cluster_t;

/* Starts a cluster of n brokers. On error returns NULL and fills err. */
edr_kafka_cluster_t *edr_kafka_cluster_new(const edr_config_t *cfg, int brokers, int partitions,
                                           char *err, size_t errlen);
void edr_kafka_cluster_destroy(edr_kafka_cluster_t *c);
/* "127.0.0.1:port,..." for bootstrap.servers. */
const char *edr_kafka_cluster_bootstraps(const edr_kafka_cluster_t *c);
/* The mock cluster, for fault injection (rd_kafka_mock_broker_set_down, ...). */
rd_kafka_mock_cluster_t *edr_kafka_cluster_mock(edr_kafka_cluster_t *c);

/* Resolves kafka.brokers: when it is "embedded", starts an embedded cluster
 * and stores it in *embedded (caller destroys it after its clients);
 * otherwise *embedded is NULL. Returns the bootstrap list or NULL on error. */
const char *edr_kafka_bootstraps(const edr_config_t *cfg, edr_kafka_cluster_t **embedded,
                                 char *err, size_t errlen);

/* Configuration for a client: bootstrap servers, logs routed to edr_log,
 * then every kafka.properties.* setting passed through (TLS, SASL, ...).
 * On error returns NULL and fills err with the offending property. */
rd_kafka_conf_t *edr_kafka_conf_new(const edr_config_t *cfg, const char *bootstraps, char *err,
                                    size_t errlen);

/* 1 when Kafka refused a message in a way that sending it again would meet
 * again (larger than the broker, topic or client takes; an invalid record):
 * the message is to be counted as lost, not retried. A refusal that a
 * change of configuration can lift (authorization, unknown topic) is not
 * one of them: retried, it stalls loudly until fixed instead of losing data. */
int edr_kafka_refused_for_good(rd_kafka_resp_err_t e);

/* Idempotent producer with acks=all. Takes ownership of conf on success
 * (conf may be NULL: built from cfg). On error returns NULL and fills err. */
rd_kafka_t *edr_kafka_producer_new(const edr_config_t *cfg, const char *bootstraps,
                                   rd_kafka_conf_t *conf, char *err, size_t errlen);

/* Consumer in group_id with manual offset management (auto commit off,
 * earliest offset reset). Same ownership rules as the producer. */
rd_kafka_t *edr_kafka_consumer_new(const edr_config_t *cfg, const char *bootstraps,
                                   const char *group_id, rd_kafka_conf_t *conf, char *err,
                                   size_t errlen);

/* Sets one property; fills err on failure and returns EDR_ECONFIG. */
int edr_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                       size_t errlen);

#endif
