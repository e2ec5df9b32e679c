/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memscan KEY.pem PID... : search the memory of processes (and all their
 * descendants) for the secret numbers of a private key, to prove key
 * custody: a service that loads a shortcert key reference must hold none
 * of them, the same service loading the key file itself must (the control
 * run, which shows the scan can find what it looks for).
 *
 * Patterns, each in both byte orders (OpenSSL keeps bignums as arrays of
 * little-endian words, so the little-endian form is what a parsed key
 * leaves in memory; the big-endian one is what DER and file buffers hold):
 *   EC      the private scalar d, at the curve's byte length
 *   RSA     d, p and q
 *   Ed25519 / Ed448 / X25519 / X448  the raw private key (seed)
 * Any other key type is refused.  Only numbers of at least 16 bytes are
 * searched, so a hit is never chance.
 *
 * Every readable mapping in /proc/PID/maps is read through /proc/PID/mem
 * in bounded chunks (overlapping by the longest pattern, so nothing is
 * missed at a chunk edge); a region that cannot be read (guard pages,
 * [vvar], device mappings) is skipped and counted.  Needs root.  Prints
 * every hit without the secret bytes, then a summary.
 * Exit: 0 nothing found, 1 found, 2 usage or error (also when no byte at
 * all could be read: a scan that saw nothing proves nothing).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define CHUNK (1u << 20)
#define MAX_PATTERNS 8
#define MAX_PAT_LEN 1024 /* RSA-8192 d */
#define MIN_PAT_LEN 16
#define MAX_PIDS 4096

struct pattern {
    char name[64];
    unsigned char *bytes; /* secure heap */
    size_t len;
    unsigned long hits;
};

static struct pattern pats[MAX_PATTERNS];
static size_t n_pats, max_len;

/* number: a big-endian integer (searched as such and little-endian); else
 * a byte string (searched as is and reversed). */
static int add_pattern(const char *name, const unsigned char *be, size_t len,
                       bool number)
{
    if (len < MIN_PAT_LEN || len > MAX_PAT_LEN || n_pats + 2 > MAX_PATTERNS)
        return -1;
    for (int order = 0; order < 2; order++) {
        struct pattern *p = &pats[n_pats++];

        p->bytes = OPENSSL_secure_malloc(len);
        if (!p->bytes)
            return -1;
        for (size_t i = 0; i < len; i++)
            p->bytes[i] = order ? be[len - 1 - i] : be[i];
        p->len = len;
        (void)snprintf(p->name, sizeof(p->name), "%s (%s)", name,
                       number ? (order ? "little-endian" : "big-endian")
                              : (order ? "reversed" : "as is"));
    }
    if (len > max_len)
        max_len = len;
    return 0;
}

/* A BIGNUM parameter of the key, big-endian, padded to pad bytes (0: its
 * own length). */
static int add_bn(EVP_PKEY *k, const char *param, const char *name, size_t pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[MAX_PAT_LEN];
    int len, r = -1;

    if (!EVP_PKEY_get_bn_param(k, param, &bn))
        return -1;
    len = pad ? (int)pad : BN_num_bytes(bn);
    if (len > 0 && (size_t)len <= sizeof(buf) &&
        BN_bn2binpad(bn, buf, len) == len)
        r = add_pattern(name, buf, (size_t)len, true);
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(bn);
    return r;
}

static int load_patterns(const char *path)
{
    EVP_PKEY *k = NULL;
    FILE *f = fopen(path, "r");
    int r = -1;

    if (!f) {
        fprintf(stderr, "memscan: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    (void)fclose(f);
    if (!k) {
        fprintf(stderr, "memscan: %s is not an unencrypted PEM private key\n",
                path);
        return -1;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        r = add_bn(k, OSSL_PKEY_PARAM_PRIV_KEY, "EC private scalar d",
                   (size_t)(EVP_PKEY_get_bits(k) + 7) / 8);
    } else if (EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "RSA-PSS")) {
        r = add_bn(k, OSSL_PKEY_PARAM_RSA_D, "RSA d", 0);
        if (r == 0)
            r = add_bn(k, OSSL_PKEY_PARAM_RSA_FACTOR1, "RSA p", 0);
        if (r == 0)
            r = add_bn(k, OSSL_PKEY_PARAM_RSA_FACTOR2, "RSA q", 0);
    } else if (EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448") ||
               EVP_PKEY_is_a(k, "X25519") || EVP_PKEY_is_a(k, "X448")) {
        unsigned char raw[64];
        size_t len = sizeof(raw);

        if (EVP_PKEY_get_raw_private_key(k, raw, &len))
            r = add_pattern("raw private key (seed)", raw, len, false);
        OPENSSL_cleanse(raw, sizeof(raw));
    } else {
        fprintf(stderr, "memscan: %s: unsupported key type %s\n", path,
                EVP_PKEY_get0_type_name(k));
    }
    EVP_PKEY_free(k);
    if (r < 0)
        fprintf(stderr, "memscan: cannot extract the secret numbers of %s\n",
                path);
    return r;
}

/* --- processes ------------------------------------------------------------ */

static pid_t pids[MAX_PIDS];
static size_t n_pids;

static bool have_pid(pid_t pid)
{
    for (size_t i = 0; i < n_pids; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;
    int ppid = -1;

    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    /* comm may hold blanks and parentheses: skip to the last ')'. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* Add every descendant of the listed processes (until nothing changes). */
static void add_descendants(void)
{
    bool grew = true;

    while (grew) {
        DIR *d = opendir("/proc");
        struct dirent *e;

        grew = false;
        if (!d)
            return;
        while ((e = readdir(d)) != NULL && n_pids < MAX_PIDS) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            pid_t ppid;

            if (*end != '\0' || v <= 0 || have_pid((pid_t)v))
                continue;
            ppid = parent_of((pid_t)v);
            if (ppid > 0 && have_pid(ppid)) {
                pids[n_pids++] = (pid_t)v;
                grew = true;
            }
        }
        (void)closedir(d);
    }
}

static void comm_of(pid_t pid, char *buf, size_t n)
{
    char path[64];
    FILE *f;

    (void)snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    f = fopen(path, "r");
    if (!f || !fgets(buf, (int)n, f))
        (void)snprintf(buf, n, "?");
    if (f)
        (void)fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* --- scanning ----------------------------------------------------------- */

static unsigned long long bytes_read;
static unsigned long regions_read, regions_skipped, total_hits;

/* Report hits in buf[0..len) that end after skip (bytes before skip were
 * searched with the previous chunk). */
static void search(pid_t pid, const char *comm, const char *what,
                   uint64_t base, const unsigned char *buf, size_t len,
                   size_t skip)
{
    for (size_t i = 0; i < n_pats; i++) {
        const unsigned char *p = buf, *end = buf + len, *hit;

        while (p < end && (hit = memmem(p, (size_t)(end - p), pats[i].bytes,
                                        pats[i].len)) != NULL) {
            p = hit + 1;
            if ((size_t)(hit - buf) + pats[i].len <= skip)
                continue;
            printf("FOUND %s in pid %d (%s) at 0x%" PRIx64 " %s\n",
                   pats[i].name, (int)pid, comm,
                   base + (uint64_t)(hit - buf), what);
            pats[i].hits++;
            total_hits++;
        }
    }
}

/* buf holds CHUNK + MAX_PAT_LEN bytes. */
static void scan_region(pid_t pid, const char *comm, int mem, uint64_t lo,
                        uint64_t hi, const char *what, unsigned char *buf)
{
    uint64_t at = lo;
    size_t carry = 0; /* tail of the previous chunk, kept at buf[0] */

    while (at < hi) {
        size_t want = CHUNK, total;
        ssize_t n;

        if (hi - at < want)
            want = (size_t)(hi - at);
        n = pread(mem, buf + carry, want, (off_t)at);
        if (n <= 0) {
            /* An unreadable page ends the region (guard pages, I/O
             * mappings): count it, go on with the next region. */
            if (at == lo)
                regions_skipped++;
            break;
        }
        bytes_read += (unsigned long long)n;
        total = carry + (size_t)n;
        search(pid, comm, what, at - carry, buf, total, carry);
        /* Keep the last max_len - 1 bytes: a pattern across the edge. */
        {
            size_t keep = total < max_len - 1 ? total : max_len - 1;

            memmove(buf, buf + total - keep, keep);
            carry = keep;
        }
        at += (uint64_t)n;
    }
    if (at > lo)
        regions_read++;
}

static int scan_pid(pid_t pid, unsigned char *buf)
{
    char path[64], line[1024], comm[64];
    FILE *maps;
    int mem;

    comm_of(pid, comm, sizeof(comm));
    (void)snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    maps = fopen(path, "r");
    (void)snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    mem = open(path, O_RDONLY | O_CLOEXEC);
    if (!maps || mem < 0) {
        fprintf(stderr, "memscan: cannot read the memory of pid %d (%s): %s\n",
                (int)pid, comm, strerror(errno));
        if (maps)
            (void)fclose(maps);
        if (mem >= 0)
            (void)close(mem);
        return -1;
    }
    while (fgets(line, sizeof(line), maps)) {
        uint64_t lo, hi;
        char perms[8] = "", what[512] = "";

        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %511[^\n]",
                   &lo, &hi, perms, what) < 3 ||
            perms[0] != 'r' || hi <= lo)
            continue;
        if (strcmp(what, "[vvar]") == 0 || strcmp(what, "[vsyscall]") == 0) {
            regions_skipped++;
            continue;
        }
        scan_region(pid, comm, mem, lo, hi, what[0] ? what : "[anonymous]",
                    buf);
    }
    (void)fclose(maps);
    (void)close(mem);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned char *buf;
    size_t n_roots;
    int bad = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s KEY.pem PID...\n", argv[0]);
        return 2;
    }
    if (CRYPTO_secure_malloc_init(64 * 1024, 32) == 0)
        fprintf(stderr, "memscan: no secure heap; patterns in plain memory\n");
    if (load_patterns(argv[1]) < 0)
        return 2;
    for (int i = 2; i < argc && n_pids < MAX_PIDS; i++) {
        char *end;
        long v = strtol(argv[i], &end, 10);

        if (*end != '\0' || v <= 0 || v == getpid()) {
            fprintf(stderr, "memscan: bad pid '%s'\n", argv[i]);
            return 2;
        }
        if (!have_pid((pid_t)v))
            pids[n_pids++] = (pid_t)v;
    }
    n_roots = n_pids;
    add_descendants();
    buf = malloc(CHUNK + MAX_PAT_LEN);
    if (!buf)
        return 2;
    for (size_t i = 0; i < n_pids; i++)
        if (pids[i] != getpid() && scan_pid(pids[i], buf) < 0)
            bad++;
    free(buf);
    for (size_t i = 0; i < n_pats; i++)
        printf("pattern %s: %zu bytes, %lu hit(s)\n", pats[i].name,
               pats[i].len, pats[i].hits);
    printf("scanned %zu process(es) (%zu given + descendants), %lu regions, "
           "%llu bytes, %lu skipped; %lu hit(s)\n",
           n_pids, n_roots, regions_read, bytes_read, regions_skipped,
           total_hits);
    for (size_t i = 0; i < n_pats; i++)
        OPENSSL_secure_clear_free(pats[i].bytes, pats[i].len);
    if (bad || bytes_read == 0) {
        fprintf(stderr, "memscan: %d process(es) could not be read\n", bad);
        return 2;
    }
    return total_hits ? 1 : 0;
}
