/* Shared helpers for tests: cmocka plus a few conveniences. */
#ifndef EDR_TEST_H
#define EDR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#endif
