/* The RocksDB calls the store needs beyond the C API (core/store/flush.cc). */
#ifndef EDR_STORE_FLUSH_H
#define EDR_STORE_FLUSH_H

#include <rocksdb/c.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One atomic flush of n families, waiting until they are on disk when
 * wait; 0, or -1 with RocksDB's message in msg. */
int edr__rocksdb_flush_cfs(rocksdb_t *db, rocksdb_column_family_handle_t *const *cfs, int n,
                           int wait, char *msg, size_t msglen);

/* Closing db will not flush its memtables (what is committed without the
 * write-ahead log and not flushed is then dropped); 0, or -1 with RocksDB's
 * message in msg. */
int edr__rocksdb_no_flush_at_close(rocksdb_t *db, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif
