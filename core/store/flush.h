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

/* RocksDB logs only its errors, through edr__store_rocksdb_said, and
 * writes no LOG file beside the store (a disk filling made its writes
 * abort the program). 0, or -1 out of memory. */
int edr__rocksdb_log_errors_only(rocksdb_options_t *o);
/* RocksDB reserves no file space ahead (fallocate): the write-ahead log
 * and the MANIFEST were reserved whole at every open (not in 7.8's C API). */
void edr__rocksdb_no_fallocate(rocksdb_options_t *o);
/* Defined in store_write.c: one RocksDB error message, into the log. */
void edr__store_rocksdb_said(int fatal, const char *msg);

#ifdef __cplusplus
}
#endif

#endif
