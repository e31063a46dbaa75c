/* Atomic flush of several column families for the store writer, the one
 * database option it changes while open, and where RocksDB logs.
 *
 * RocksDB 7.8's C API flushes one column family per call
 * (rocksdb_flush_cf). Without the write-ahead log the store relies on
 * atomic flush: the families' memtables reach disk together or not at
 * all, so the offsets in `meta` never run ahead of the data they describe
 * (DESIGN.md: data and offsets in one atomic WriteBatch). A flush of one
 * family at a time would break that between two calls, so this flushes
 * them in one DB::Flush call, which the C API does not offer.
 *
 * The handle and options structs are the C API's own (rocksdb/c.h declares
 * them opaque; c.cc defines each as one pointer to the C++ object, or the
 * C++ Options themselves). */
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <vector>

struct rocksdb_t {
    rocksdb::DB *rep;
};
struct rocksdb_column_family_handle_t {
    rocksdb::ColumnFamilyHandle *rep;
};
struct rocksdb_options_t {
    rocksdb::Options rep;
};

#include "flush.h"

/* Flushes the n families' memtables in one atomic flush. wait: 1 returns
 * once they are on disk; 0 schedules the flush and returns (it may then
 * cause a write stall, which the caller's stall checks see). Returns 0, or
 * -1 with RocksDB's message in msg (nothing is allocated: a failure to
 * allocate cannot pass for a flush that worked). */
int edr__rocksdb_flush_cfs(rocksdb_t *db, rocksdb_column_family_handle_t *const *cfs, int n,
                           int wait, char *msg, size_t msglen)
{
    try {
        std::vector<rocksdb::ColumnFamilyHandle *> v;
        v.reserve((size_t)n);
        for (int i = 0; i < n; i++)
            v.push_back(cfs[i]->rep);
        rocksdb::FlushOptions fo;
        fo.wait = wait != 0;
        fo.allow_write_stall = true; /* never block the consuming thread here */
        rocksdb::Status s = db->rep->Flush(fo, v);
        if (s.ok())
            return 0;
        snprintf(msg, msglen, "%s", s.ToString().c_str());
    } catch (...) {
        snprintf(msg, msglen, "flush: out of memory");
    }
    return -1;
}

/* Closing db will not flush its memtables (DBOptions
 * avoid_flush_during_shutdown, which rocksdb_set_options cannot set: it
 * sets a column family's options and refuses this one). 0, or -1 with
 * RocksDB's message in msg. */
int edr__rocksdb_no_flush_at_close(rocksdb_t *db, char *msg, size_t msglen)
{
    try {
        rocksdb::Status s = db->rep->SetDBOptions({{"avoid_flush_during_shutdown", "true"}});
        if (s.ok())
            return 0;
        snprintf(msg, msglen, "%s", s.ToString().c_str());
    } catch (...) {
        snprintf(msg, msglen, "set options: out of memory");
    }
    return -1;
}

namespace {
/* RocksDB's errors into the program's log; nothing written to the store's
 * disk. Its info LOG file there, on a disk that fills, made Debian's
 * RocksDB (assertions on) abort: a LOG write that failed for want of space,
 * then the next one (`sync_without_flush_called_`), at DB::Open already. */
class StoreLogger : public rocksdb::Logger {
  public:
    StoreLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL) {}
    using rocksdb::Logger::Logv;
    void Logv(const char *, va_list) override {} /* unleveled: informational */
    void LogHeader(const char *, va_list) override {}
    void Logv(const rocksdb::InfoLogLevel level, const char *format, va_list ap) override
    {
        if (level < rocksdb::InfoLogLevel::ERROR_LEVEL ||
            level == rocksdb::InfoLogLevel::HEADER_LEVEL)
            return;
        char msg[1024];
        vsnprintf(msg, sizeof(msg), format, ap);
        edr__store_rocksdb_said(level == rocksdb::InfoLogLevel::FATAL_LEVEL, msg);
    }
};
} // namespace

int edr__rocksdb_log_errors_only(rocksdb_options_t *o)
{
    try {
        o->rep.info_log = std::make_shared<StoreLogger>();
        return 0;
    } catch (...) {
        return -1;
    }
}

void edr__rocksdb_no_fallocate(rocksdb_options_t *o)
{
    o->rep.allow_fallocate = false;
}
