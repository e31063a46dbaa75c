/* edr-collector with the store's flush-failure hook armed from the
 * environment (EDR_TEST_FAIL_FLUSH=N: the Nth flush a shard asks for fails,
 * as on a full disk). Built for tests only; collector/main.c is compiled in
 * with its main renamed to edr_collector_main. */
#include "store_int.h"

#include <stdlib.h>

#undef main
int edr_collector_main(int argc, char **argv);

int main(int argc, char **argv)
{
    const char *n = getenv("EDR_TEST_FAIL_FLUSH");
    edr__store_fail_flush = n ? (unsigned)strtoul(n, NULL, 10) : 0;
    return edr_collector_main(argc, argv);
}
