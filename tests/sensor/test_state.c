/* Sensor state directory: batch seqs increase across restarts, and across the loss of the directory itself; drops no health event reported are carried into the next run. */
#include "edr_test.h"

#include "sensor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[] = "/tmp/edr-test-state-XXXXXX";

static uint64_t take(const char *dir, const uint8_t host[EDR_ID_LEN], int n)
{
    char err[256];
    edr__state_t *st = edr__state_open(dir, 0, err, sizeof(err));
    if (!st)
        fail_msg("state %s: %s", dir, err);
    uint64_t last = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = edr__state_next_seq(st, host);
        assert_true(s > last);
        last = s;
    }
    edr__state_close(st);
    return last;
}

/* A restart continues above the last seq; a lost state directory (a new one
 * for the same host) still starts above every seq the old one gave out, so a
 * collector does not take the new batches for redeliveries of stored ones. */
static void test_seq_increases(void **state)
{
    (void)state;
    uint8_t host[EDR_ID_LEN];
    memset(host, 0xab, sizeof(host));
    char a[300], b[300];
    snprintf(a, sizeof(a), "%s/a", root);
    snprintf(b, sizeof(b), "%s/b", root);
    uint64_t s1 = take(a, host, 70000); /* past one reservation */
    uint64_t s2 = take(a, host, 1);
    assert_true(s2 > s1);
    uint64_t s3 = take(b, host, 1);
    assert_true(s3 > s2);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", a);
    assert_int_equal(system(cmd), 0);
    uint64_t s4 = take(a, host, 1); /* the same path, recreated */
    assert_true(s4 > s3);
}

/* Fills the file system of path to the last block (appending to path). */
static void fill_up(const char *path)
{
    static char blk[4096];
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    while (fwrite(blk, 1, sizeof(blk), f) == sizeof(blk) && fflush(f) == 0)
        ;
    fclose(f);
}

/* n more seqs of host, each above *last (updated); what: the case, said. */
static void seqs_increase(edr__state_t *st, const uint8_t *host, int n, uint64_t *last,
                          const char *what)
{
    for (int i = 0; i < n; i++) {
        uint64_t s = edr__state_next_seq(st, host);
        if (s <= *last)
            fail_msg("batch %d %s: seq %llu after %llu", i, what, (unsigned long long)s,
                     (unsigned long long)*last);
        *last = s;
    }
}

/* A full file system does not stop the batch sequence (review-1206g M1:
 * every batch was dropped once a reservation could not be written): it goes
 * on in memory, and the next start, on the full file system too, is above
 * every seq given out. */
static void test_seq_on_a_full_file_system(void **state)
{
    (void)state;
    char mnt[300], sd[320], fill[340];
    snprintf(mnt, sizeof(mnt), "%s/fullfs", root);
    edr_test_tmpfs(mnt, "size=64k,mode=0700");
    snprintf(sd, sizeof(sd), "%s/state", mnt);
    uint8_t host[EDR_ID_LEN];
    memset(host, 0xcd, sizeof(host));
    char err[256];
    edr__state_t *st = edr__state_open(sd, 0, err, sizeof(err));
    assert_non_null(st);
    uint64_t last = edr__state_next_seq(st, host);
    assert_true(last > 0);
    /* written with 20 digits: an overwrite in place never needs a longer one
     * (review-1206i L2) */
    char seqf[360];
    struct stat sb;
    snprintf(seqf, sizeof(seqf), "%s/seq", sd);
    assert_int_equal(stat(seqf, &sb), 0);
    assert_int_equal(sb.st_size, 21);
    snprintf(fill, sizeof(fill), "%s/fill", mnt);
    fill_up(fill);
    seqs_increase(st, host, 140000, &last, "on a full file system"); /* two reservations */
    edr__state_close(st);
    st = edr__state_open(sd, 0, err, sizeof(err)); /* still full */
    if (!st) fail_msg("a start on a full file system: %s", err);
    uint64_t again = edr__state_next_seq(st, host);
    print_message("last seq %llu, after the restart %llu\n", (unsigned long long)last,
                  (unsigned long long)again);
    assert_true(again > last);
    /* nothing to overwrite either (the file gone, its room taken): the
     * sequence goes on in memory */
    last = again;
    char seqp[360];
    snprintf(seqp, sizeof(seqp), "%s/seq", sd);
    assert_int_equal(unlink(seqp), 0);
    fill_up(fill);
    seqs_increase(st, host, 140000, &last, "with no room and no seq file");
    edr__state_close(st);
    umount(mnt);
    rmdir(mnt);
}

/* The lock is the directory's: a lock file deleted by hand does not let a
 * second sensor in (review-1206g L2: both ran on one spool). */
static void test_lock_without_its_file(void **state)
{
    (void)state;
    char sd[300], lk[320];
    snprintf(sd, sizeof(sd), "%s/lock", root);
    char err[256];
    edr__state_t *a = edr__state_open(sd, 0, err, sizeof(err));
    assert_non_null(a);
    snprintf(lk, sizeof(lk), "%s/lock", sd);
    assert_int_equal(unlink(lk), 0);
    edr__state_t *b = edr__state_open(sd, 0, err, sizeof(err));
    if (b) fail_msg("a second instance ran after the lock file was deleted");
    assert_non_null(strstr(err, "another edr-sensor runs"));
    edr__state_close(a);
    b = edr__state_open(sd, 0, err, sizeof(err)); /* free again */
    assert_non_null(b);
    edr__state_close(b);
}

static uint64_t count_of(const edr__drops_t *d, const char *src, const char *why)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->d[i].source, src) && !strcmp(d->d[i].reason, why))
            return d->d[i].count;
    return 0;
}

/* What a run counted beyond its last health event is saved, added to the
 * next run's counters once, and a damaged line is skipped, not fatal. */
static void test_unreported_drops_carried(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/drops", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    edr__drops_t now = {0}, reported = {0}, next = {0};
    edr__drops_add(&now, "kafka", "refused", 500);
    edr__drops_add(&now, "ebpf.file_write", "write_track_evicted", 3);
    reported = now; /* the last health event carried these */
    edr__drops_add(&now, "kafka", "refused", 200);
    edr__drops_add(&now, "spool", "write_error", 7);
    assert_int_equal(edr__drops_save_unreported(&now, &reported, dir), 207);

    edr__drops_add(&next, "kafka", "refused", 1); /* the next run's own */
    assert_int_equal(edr__drops_carry(&next, dir), 207);
    assert_int_equal(count_of(&next, "kafka", "refused"), 201);
    assert_int_equal(count_of(&next, "spool", "write_error"), 7);
    assert_int_equal(count_of(&next, "ebpf.file_write", "write_track_evicted"), 0);
    edr__drops_carried(dir);
    assert_int_equal(edr__drops_carry(&next, dir), 0); /* once */

    /* nothing beyond the last health event: no file */
    assert_int_equal(edr__drops_save_unreported(&reported, &reported, dir), 0);
    char p[400];
    snprintf(p, sizeof(p), "%s/unreported-drops", dir);
    assert_int_equal(access(p, F_OK), -1);

    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("kafka refused\nspool overflow 12\n\xff\xfe garbage\n", f);
    fclose(f);
    edr__drops_t third = {0};
    assert_int_equal(edr__drops_carry(&third, dir), 12);
    assert_int_equal(count_of(&third, "spool", "overflow"), 12);
    assert_int_equal(third.n, 1);

    /* the file could not be removed after the carry (say the first flush
     * failed), and a later health event reported everything: the run's end
     * removes it, so the next run does not carry the same drops again */
    assert_int_equal(edr__drops_save_unreported(&third, &third, dir), 0);
    assert_int_equal(access(p, F_OK), -1);

    /* neither file is followed through a symbolic link */
    char target[400], tmp[420];
    snprintf(target, sizeof(target), "%s/elsewhere", root);
    f = fopen(target, "w");
    assert_non_null(f);
    fputs("spool overflow 99\n", f);
    fclose(f);
    assert_int_equal(symlink(target, p), 0);
    edr__drops_t fourth = {0};
    assert_int_equal(edr__drops_carry(&fourth, dir), 0);
    assert_int_equal(fourth.n, 0);
    assert_int_equal(unlink(p), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    assert_int_equal(symlink(target, tmp), 0);
    assert_int_equal(edr__drops_save_unreported(&now, &reported, dir), 0); /* refused, said */
    f = fopen(target, "r");
    assert_non_null(f);
    char line[64];
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "spool overflow 99\n"); /* untouched */
    unlink(tmp);
    unlink(target);
}

/* Opens dir, which must fail with an error containing want. */
static void refused(const char *dir, const char *want)
{
    char err[512] = "";
    edr__state_t *st = edr__state_open(dir, 0, err, sizeof(err));
    if (st) {
        edr__state_close(st);
        fail_msg("state dir %s: opened, expected '%s'", dir, want);
    }
    if (!strstr(err, want))
        fail_msg("state dir %s: error '%s', expected '%s'", dir, err, want);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    return sb.st_mode & 07777;
}

/* The root sensor never chmods a directory it did not make (sensor.state_dir
 * /tmp would lock everyone else out) and refuses one that someone else could
 * write to or that is not a real directory of its own. */
static void test_existing_dir_checked(void **state)
{
    (void)state;
    char d[300], p[400];
    snprintf(d, sizeof(d), "%s/shared", root);
    assert_int_equal(mkdir(d, 0700), 0);
    assert_int_equal(chmod(d, 01777), 0);
    refused(d, "writable by others: refusing");
    assert_int_equal(mode_of(d), 01777); /* left as it was */
    snprintf(p, sizeof(p), "%s/lock", d);
    assert_int_equal(access(p, F_OK), -1); /* nothing written in it */

    assert_int_equal(chmod(d, 0770), 0);
    refused(d, "writable by group: refusing");
    assert_int_equal(mode_of(d), 0770);

    assert_int_equal(chmod(d, 0755), 0); /* an existing private dir: used as it is */
    char err[512];
    edr__state_t *st = edr__state_open(d, 0, err, sizeof(err));
    if (!st)
        fail_msg("%s", err);
    edr__state_close(st);
    assert_int_equal(mode_of(d), 0755);

    /* one it makes itself is private whatever the umask */
    mode_t old = umask(0);
    snprintf(p, sizeof(p), "%s/made/here", root);
    st = edr__state_open(p, 0, err, sizeof(err));
    umask(old);
    if (!st)
        fail_msg("%s", err);
    edr__state_close(st);
    assert_int_equal(mode_of(p), 0700);

    snprintf(p, sizeof(p), "%s/link", root);
    assert_int_equal(symlink(d, p), 0);
    refused(p, "is a symbolic link: refusing");
    /* a trailing slash would make open() follow the link */
    snprintf(p, sizeof(p), "%s/link/", root);
    refused(p, "is a symbolic link: refusing");
    snprintf(p, sizeof(p), "%s/link//", root);
    refused(p, "is a symbolic link: refusing");

    if (geteuid() == 0) {
        snprintf(p, sizeof(p), "%s/nobody", root);
        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(chown(p, 65534, 65534), 0);
        refused(p, "owned by uid 65534, not 0: refusing");
    }
}

/* Files in the state dir are not followed when they are symlinks: the lock
 * and seq.tmp are truncated, and must not truncate what a link points at. */
static void test_state_files_not_followed(void **state)
{
    (void)state;
    char d[300], victim[400], p[400];
    snprintf(d, sizeof(d), "%s/links", root);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(victim, sizeof(victim), "%s/victim", root);
    put(victim, "precious\n");

    snprintf(p, sizeof(p), "%s/lock", d);
    assert_int_equal(symlink(victim, p), 0);
    refused(d, "cannot open lock");
    assert_int_equal(unlink(p), 0);

    snprintf(p, sizeof(p), "%s/seq.tmp", d);
    assert_int_equal(symlink(victim, p), 0);
    refused(d, "cannot write");
    assert_int_equal(unlink(p), 0);

    snprintf(p, sizeof(p), "%s/seq", d); /* dangling: not "a new state dir" */
    assert_int_equal(symlink("/nonexistent/seq", p), 0);
    refused(d, "seq: cannot open");
    assert_int_equal(unlink(p), 0);

    struct stat sb;
    assert_int_equal(stat(victim, &sb), 0);
    assert_int_equal(sb.st_size, 9);
}

/* The persisted reservation is digits and a newline, and one so close to
 * 2^64 that the seqs would wrap (and restart low) is refused. */
static void test_seq_file_strict(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"-5\n", "not a sequence number"},
        {"12junk\n", "not a sequence number"},
        {" 12\n", "not a sequence number"},
        {"12", "not a sequence number"},
        {"", "not a sequence number"},
        {"0\n", "sequence 0"},
        {"18446744073709551615\n", "refusing (it would wrap)"},
        {"18446744073709420544\n", "refusing (it would wrap)"}, /* the limit + 1 */
        {"99999999999999999999\n", "refusing (it would wrap)"},
        {"123456789012345678901234\n", "not a sequence number"},
    };
    char d[300], p[400];
    snprintf(d, sizeof(d), "%s/strict", root);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(p, sizeof(p), "%s/seq", d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(p, bad[i].text);
        refused(d, bad[i].want);
    }
    /* the largest accepted value still gives increasing seqs */
    put(p, "18446744073709420543\n");
    uint8_t host[EDR_ID_LEN];
    memset(host, 0x5a, sizeof(host));
    uint64_t s1 = take(d, host, 3);
    assert_true(s1 == 18446744073709420545ull);
    /* its run reserved past the limit: the next start refuses, not wraps */
    refused(d, "refusing (it would wrap)");

    put(p, "42\n");
    assert_int_equal(take(d, host, 1), 42);

    /* a seq that cannot be read is an error, not a new state directory */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    refused(d, "seq: cannot read");
    assert_int_equal(rmdir(p), 0);
}

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_seq_increases),
                                       cmocka_unit_test(test_unreported_drops_carried),
                                       cmocka_unit_test(test_existing_dir_checked),
                                       cmocka_unit_test(test_state_files_not_followed),
                                       cmocka_unit_test(test_seq_file_strict),
                                       cmocka_unit_test(test_seq_on_a_full_file_system),
                                       cmocka_unit_test(test_lock_without_its_file)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    (void)!system(cmd);
    return rc;
}
