/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SHORTCERT_FUZZ_H
#define SHORTCERT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
