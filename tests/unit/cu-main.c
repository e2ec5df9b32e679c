/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main() for every CUnit test binary.  CU_basic_run_tests() returns 0 even
 * when tests fail, and CU_cleanup_registry() resets the counters, so the
 * exit status is computed from the failure counts before cleanup.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "cu-main.h"

int cu_add_suite(const char *name, const struct cu_test *tests)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);

    if (!s)
        return -1;
    for (; tests->name; tests++)
        if (!CU_add_test(s, tests->name, tests->fn))
            return -1;
    return 0;
}

int main(void)
{
    unsigned failed, run;

    /* As in shortcertd: a peer that closes early must not kill the
     * process (in-process TLS servers of the tests write to sockets). */
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    if (cu_register() != 0) {
        fprintf(stderr, "registering tests failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return EXIT_FAILURE;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() +
             CU_get_number_of_suites_failed() +
             CU_get_number_of_failures();
    run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no tests ran\n");
        return EXIT_FAILURE;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
