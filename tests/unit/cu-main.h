/* SPDX-License-Identifier: Apache-2.0 */
/* Shared main() for the CUnit tests: each test file defines cu_register(). */
#ifndef SHORTCERT_CU_MAIN_H
#define SHORTCERT_CU_MAIN_H

#include <CUnit/CUnit.h>

/* Adds the file's suites and tests to the registry; 0 on success. */
int cu_register(void);

/* Add one suite with the given tests (NULL-terminated {name, fn} list). */
struct cu_test {
    const char *name;
    CU_TestFunc fn;
};
int cu_add_suite(const char *name, const struct cu_test *tests);

#endif
