/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Corpus replay driver: feeds every file of the given corpus directories
 * (or files) to LLVMFuzzerTestOneInput(), then deterministic variations of
 * each (every truncation point up to 512 bytes, and single-bit flips of the
 * first 256 bytes), so that plain `meson test` and the ASan build exercise
 * the parsers beyond the committed inputs.  Fails if a corpus is missing or
 * empty.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1u << 20)

static int run_one(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    size_t cut = size < 512 ? size : 512;

    if (!copy)
        return -1;
    (void)LLVMFuzzerTestOneInput(data, size);
    for (size_t n = 0; n < cut; n++) {
        /* a fresh heap copy, so ASan sees reads past the truncated end */
        uint8_t *t = malloc(n ? n : 1);

        if (!t) {
            free(copy);
            return -1;
        }
        memcpy(t, data, n);
        (void)LLVMFuzzerTestOneInput(t, n);
        free(t);
    }
    for (size_t i = 0; i < size && i < 256; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, data, size);
            copy[i] ^= (uint8_t)(1u << bit);
            (void)LLVMFuzzerTestOneInput(copy, size);
        }
    }
    free(copy);
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (!f) {
        perror(path);
        return -1;
    }
    buf = malloc(REPLAY_MAX_INPUT);
    if (!buf) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    if (run_one(buf, n) < 0) {
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned files = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d;
        struct dirent *de;

        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                return 1;
            files++;
            continue;
        }
        d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            return 1;
        }
        while ((de = readdir(d)) != NULL) {
            char path[4096];

            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (run_file(path) < 0) {
                closedir(d);
                return 1;
            }
            files++;
        }
        closedir(d);
    }
    if (files == 0) {
        fprintf(stderr, "no corpus files replayed\n");
        return 1;
    }
    printf("replayed %u corpus files (with truncations and bit flips)\n", files);
    return 0;
}
