/* Small helpers shared by the benchmark programs (header only: each bench is one .c). */
#ifndef EDR_BENCH_UTIL_H
#define EDR_BENCH_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int bench__rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

/* Removes the tree at dir (a store the bench made itself); errors are ignored. */
static inline void bench_rm_tree(const char *dir)
{
    nftw(dir, bench__rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
