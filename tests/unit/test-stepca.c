/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for helper/stepca.c and helper/http.c: JWE decryption of
 * encryptedKey against vectors made independently (python3-jwcrypto,
 * python3-cryptography primitives, and go.step.sm/crypto/jose through
 * tests/stepca mkprov), wrong passwords, p2c bounds, tampering; private
 * JWKs; the shape of the x5c renew token and of the JWK one-time token,
 * parsed back and signature-checked; the SignResponse, error and
 * provisioner-list parsers on real step-ca 0.19 replies and on broken
 * ones; name classification and CSRs; argument checks, a refused
 * connection, and the errno class of a client certificate refused in the
 * TLS handshake (an in-process OpenSSL server).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cu-main.h"
#include "http.h"
#include "jws.h"
#include "sec.h"
#include "stepca.h"

/* python3-jwcrypto 1.1 (p2c 8192) and python3-cryptography primitives
 * (p2c 1000, 999, 1000001), all with PY_PASSWORD, of the private JWK PY_*. */
#define PY_PASSWORD "correct horse battery staple"
#define PY_D "UWA4UBkto9irW3lHXJhroeZCfDFdu06NLxawNC-gBJ4"
#define PY_X "LVbNTtqaqIaZellGLcOMuBoeGQAvLOJAM5CwGb76PDo"
#define PY_Y "RVyukCjemQIQ5uZ63KmGEKsIY9R6r6Y-fZHIkAwWgHA"
#define PY_KID "Ajf1n4StC2ciTCvEb9bSZ2xsl87kN-_0OzkHzQo1Pv8"
static const char py_jwe[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6"
    "IkEyNTZHQ00iLCJwMmMiOjgxOTIsInAycyI6Il9vSEkwMXJZbzAzRUJud2htQTNCSXci"
    "fQ.WFyIBSH7AcwYlbaEc22GHPpCpgMRjvQ789Ow5l2QnIFK1oJGIhikPg.z1t-8f_wSO"
    "xaIDX1.U3EH3Bkes_2mhYBixQ0EBpj5JVxILZzj3oOog_tmD9vYQTkhfRPZhdtSeAiQC"
    "OUBObkJqet1VJNA18nWaMOlv5yHVOP8NrBgHFi_PtLzzUFRYnsmp2muj0jtf9q4eR9La"
    "muOJvsibNlxeWccyiS6dNYE0EpdTKVvLC-zBwfnbCkClmMBxgu-ugiZEP6jY1KnSOzV4"
    "-GITtn8jAKPrDXX2O_93n7bqJiRdkkVbfKSlncEYjX8Yc8cyRni1rlTikwUXRXQtzhqx"
    "mD6Mu2JkcnzbK8EMp6YsUvjjJvCUWYcMqjr6qdwFZEpGRAKTK1iyhLJ_v2Q4iTa3kUPQ"
    "YkHGo0.Eg1QCwBF8txrtq9HGqpGSg";

static const char py_jwe_1000[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJlbmMiOiJBMjU2R0NNIiwiY3R5Ijoi"
    "andrK2pzb24iLCJwMmMiOjEwMDAsInAycyI6InFnTGdYY0RXREM2dFhIQUdtTnBKeFEi"
    "fQ.KSmVdi8kHEceZP5o2Y_UHjz7HjQEyNDQXtU8xmCH4PyLPZFzZ2VySg.VRDjsAqJIJ"
    "Ym9hFz.u6hSk3gPeK12v47_3mNxFDrdeUWDFIw66Bm0pE54Ct-pipVi7Hp0_GQHacJ7M"
    "-wgl9oYshzRUv3a1-Yok3SM7s4pyyhuGhkCxrvRnyTGSJ29BYcrC2daKYD4lKAFAqBIi"
    "4_3iBzOcAxAyCuVC8_qYrfBEBrNwX-pLatCWip1WI-kGgCM1RsLk7GEPpRgM-ak0V0X6"
    "ueqY92I0CSR2IeIjXhnXkkb9jDr47aGtYrQ2ufg4ya_RkO4NkysnOeV-IAh7Mq-G9ZEJ"
    "__AA3DZ0V5-UoWBdW5FLcOHnPz770MeD-n8kYx1lR_QXZORFnEixFIHSPJv059TvKK9e"
    "lxlmIY.5NEOHZsi8sL5WJzGXV014A";

static const char py_jwe_999[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJlbmMiOiJBMjU2R0NNIiwiY3R5Ijoi"
    "andrK2pzb24iLCJwMmMiOjk5OSwicDJzIjoiWGpaQVVVM2R4R0hLMnd4SnFkT3hqUSJ9"
    ".Lr9xS1EvRv7maPeGzAWvmMc747CqzQirVVcsU1x0_U6oUIx77HO4sQ.dFGn2rGiylDM"
    "pwKP.L2x5Lwu-w4jFAkY7D1Iv3FsTj7ytr3l1Ame4O-Epww8yBI0wG-bNs9AKexLq8VY"
    "6mMk_8LP_gTCYeiGaiD2TohkPI_m3lMHRZpPUZ5hmkbZoJyNzLRBkelr05V8KwzvE-m3"
    "Cv6TaU-yn0WNKsmhLC49ie8JW7EcbJXgTFKBrHRoknbuKh1nf9rAZUMMDjW_j2NgYGj7"
    "-v_ccvam-psd7xuet_R11d9HaP9q1KpwPdch4P8EZMukZzx8T5qLh_3J13iIRKaGH-CF"
    "IfuDomX7WaI9_nYgvgV4RHrJsExzr1pv5cqOcPDIwnX8jRyf3um1RN_qDPuoFLs2qnBd"
    "wpuM.3RdT2O7PKeyouTGdCTTJ4w";

static const char py_jwe_1000001[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJlbmMiOiJBMjU2R0NNIiwiY3R5Ijoi"
    "andrK2pzb24iLCJwMmMiOjEwMDAwMDEsInAycyI6IjhyUEU4d3F2TWpPN296anJ3d196"
    "dVEifQ.pNk7CT7wW0h6D59jRlpg90PpnSucIURv_B0egGZ7Y5StuhVbrENOHw.Gp0QKU"
    "807ng9Hhu6.94HlgGY5GagihJiTUBH8e9ZyDBtKBAMIbkeJlJIMZ2cjlcqBvqFHC55wX"
    "V-1GHW8vPOdMqhi48PwkmJ2V17mXTXNDXry6YMvKKVsZyqBzh8fcZSDBOiDFYGPAmAQc"
    "4DtsEoZbOW4--5aTps-PdVw4tg0PhpBLNcx_GBusj1hgsZwbVqZIHU-iZnEspWQf0q4Q"
    "pcM80gJjOt146QWg_15cSDc7dE9mbRFDThDnexLy_03ORA2t1ohA4Np0FMwLI8ZZBW-k"
    "qXl3HDdYY2dXL6ifrdJdiZzOKn2lt57DYRmI9tmIUCn1I6moB2MbsXJN3H_en9yCpMHW"
    "dndX0gxtXo.MTa9KHe60Hr_W97RdOAkww";

/* tests/stepca/main.go mkprov (go.step.sm/crypto/jose, as `step ca
 * provisioner add --create`: p2c 100000) with GO_PASSWORD. */
#define GO_PASSWORD "go vector password"
#define GO_D "uSKgchCDGje2-HnUGh-D66TTSFXgJRavmzVoRA6ODgc"
#define GO_X "0eKysRhWx0Gp7INz-_VdhW1VBNxYl_bx9vb8a-EeD2M"
#define GO_Y "DoCCmRMaGmIvIKta0eiRKqAagux-lf4Vns6hYdGDf_g"
#define GO_KID "YMSnRZn38Ot3IAIW4YFTG361lnq-E54YKc-1FN9vHFY"
static const char go_jwe[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6"
    "IkEyNTZHQ00iLCJwMmMiOjEwMDAwMCwicDJzIjoiRkZMLV91WnNGM2xESHBJOWpxS25K"
    "QSJ9.3bHPzGqCVwGuH5JvIB9LL49_2VZZUBMIEk81SDbNz88AquTBoE0PHA.Z-MygsSX"
    "U42Lik4I.NcnUY47slWLbStGefPjEii5cQ_8dhjcqxINszJSubWMzowA5U6CoX5oVggo"
    "JVnurmN5_IWeWeDxIbq90IQoba69iAr-xijgx6nA4RlZsy7QU_bfVVtbf01VjYd0pSHO"
    "jSLhEsv380bJ94B8VbNCPu3zK-4IhVAscXpj6jkeUiSbC8AyrlBWF-1nnyTOPhw6jJR8"
    "IQ1L1p7JivAAFEwE9I_tXoTLWPF8Tsr0NCqPXXSyTgrz_RsEbhmvGpYLSQb9Y5t_Gpoc"
    "hUbcWv-Th2xXNUx3Te_9yw3hw3oI-u2AGZOve5olBSVfbOBNo3Fmbs5l70kkpAMBhCq9"
    "jQkUUzzM.h3TJLAkLvczJ6ilJz5wbdg";

/* A real SignResponse of step-ca 0.19 (the harness CA, POST /1.0/renew). */
static const char real_sign_response[] =
    "{\"crt\":\"-----BEGIN CERTIFICATE-----\\nMIICNjCCAd2gAwIBAgIRAOn0iwW"
    "RazolAII6o6/PZmUwCgYIKoZIzj0EAwIwQjEX\\nMBUGA1UECgwOc2hvcnRjZXJ0IHRl"
    "c3QxJzAlBgNVBAMMHnNob3J0Y2VydCBUZXN0\\nIEludGVybWVkaWF0ZSBDQTAeFw0yN"
    "jEyMDMxOTM1MTJaFw0yNjEyMDMyMDM2MTJa\\nMBwxGjAYBgNVBAMTEXdlYi5pbnRlcm"
    "5hbC50ZXN0MFkwEwYHKoZIzj0CAQYIKoZI\\nzj0DAQcDQgAE1RLlb0QvF9vO3UTPHE4"
    "O4txHUmODljjH08S1FbVNYvfAEQPL2e3W\\nCnEDdBZIQyaxltwbJJ0gNDmHWO0/6L/n"
    "WaOB2TCB1jAfBgNVHSMEGDAWgBS52bJJ\\ns8SZyJ7negIBCEwHir63IDAOBgNVHQ8BA"
    "f8EBAMCB4AwHQYDVR0lBBYwFAYIKwYB\\nBQUHAwEGCCsGAQUFBwMCMB0GA1UdDgQWBB"
    "SGukQkNPZZ1iyq+J5vFUAP2AlPezAc\\nBgNVHREEFTATghF3ZWIuaW50ZXJuYWwudGV"
    "zdDBHBgwrBgEEAYKkZMYoQAEENzA1\\nAgEBBANqd2sEK0NqRkNQMENlWDFubk9qUzlm"
    "SmNHV1JuR3d1MGg3SGJBYmV2a3ot\\nQ2hQLTAwCgYIKoZIzj0EAwIDRwAwRAIgNoSgX"
    "Shc1UcvtxOMto9/LZ8llswqReYx\\nUL+xQEkaGEUCIGopuu/34MCGmfktEexIycsZO8"
    "lQIPqWbKnKT1xgi6QR\\n-----END CERTIFICATE-----\\n\",\"ca\":\"-----BE"
    "GIN CERTIFICATE-----\\nMIIB4zCCAYqgAwIBAgIUM98YKwELBr0afHW66w/TCcRM+"
    "dUwCgYIKoZIzj0EAwIw\\nOjEXMBUGA1UECgwOc2hvcnRjZXJ0IHRlc3QxHzAdBgNVBA"
    "MMFnNob3J0Y2VydCBU\\nZXN0IFJvb3QgQ0EwHhcNMjYxMjAyMTkyNzUxWhcNMzYxMTI"
    "wMTkyNzUxWjBCMRcw\\nFQYDVQQKDA5zaG9ydGNlcnQgdGVzdDEnMCUGA1UEAwwec2hv"
    "cnRjZXJ0IFRlc3Qg\\nSW50ZXJtZWRpYXRlIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DA"
    "QcDQgAELqFBKEhT\\n8RV41jiH17RS0ZJ2owktJdwBa8ptE7dD8wF7GWOCCZl4hbBbR0"
    "HbWWLIO8yqKMBg\\nXcAXuKSDJZm4xKNmMGQwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgN"
    "VHQ8BAf8EBAMC\\nAQYwHQYDVR0OBBYEFLnZskmzxJnInud6AgEITAeKvrcgMB8GA1Ud"
    "IwQYMBaAFNTX\\ngcvusGb8kzk8uvf82/IqFcgOMAoGCCqGSM49BAMCA0cAMEQCIG/05"
    "tdXdqt+mIVp\\nIjMvEI9iHBrVcAy3AWaf9m/407qLAiASvWLPxdwn37tve4oEktvgbH"
    "LLac9JrmfB\\nzdKcgFBqdw==\\n-----END CERTIFICATE-----\\n\",\"certCha"
    "in\":[\"-----BEGIN CERTIFICATE-----\\nMIICNjCCAd2gAwIBAgIRAOn0iwWRaz"
    "olAII6o6/PZmUwCgYIKoZIzj0EAwIwQjEX\\nMBUGA1UECgwOc2hvcnRjZXJ0IHRlc3Q"
    "xJzAlBgNVBAMMHnNob3J0Y2VydCBUZXN0\\nIEludGVybWVkaWF0ZSBDQTAeFw0yNjEy"
    "MDMxOTM1MTJaFw0yNjEyMDMyMDM2MTJa\\nMBwxGjAYBgNVBAMTEXdlYi5pbnRlcm5hb"
    "C50ZXN0MFkwEwYHKoZIzj0CAQYIKoZI\\nzj0DAQcDQgAE1RLlb0QvF9vO3UTPHE4O4t"
    "xHUmODljjH08S1FbVNYvfAEQPL2e3W\\nCnEDdBZIQyaxltwbJJ0gNDmHWO0/6L/nWaO"
    "B2TCB1jAfBgNVHSMEGDAWgBS52bJJ\\ns8SZyJ7negIBCEwHir63IDAOBgNVHQ8BAf8E"
    "BAMCB4AwHQYDVR0lBBYwFAYIKwYB\\nBQUHAwEGCCsGAQUFBwMCMB0GA1UdDgQWBBSGu"
    "kQkNPZZ1iyq+J5vFUAP2AlPezAc\\nBgNVHREEFTATghF3ZWIuaW50ZXJuYWwudGVzdD"
    "BHBgwrBgEEAYKkZMYoQAEENzA1\\nAgEBBANqd2sEK0NqRkNQMENlWDFubk9qUzlmSmN"
    "HV1JuR3d1MGg3SGJBYmV2a3ot\\nQ2hQLTAwCgYIKoZIzj0EAwIDRwAwRAIgNoSgXShc"
    "1UcvtxOMto9/LZ8llswqReYx\\nUL+xQEkaGEUCIGopuu/34MCGmfktEexIycsZO8lQI"
    "PqWbKnKT1xgi6QR\\n-----END CERTIFICATE-----\\n\",\"-----BEGIN CERTIF"
    "ICATE-----\\nMIIB4zCCAYqgAwIBAgIUM98YKwELBr0afHW66w/TCcRM+dUwCgYIKoZ"
    "Izj0EAwIw\\nOjEXMBUGA1UECgwOc2hvcnRjZXJ0IHRlc3QxHzAdBgNVBAMMFnNob3J0"
    "Y2VydCBU\\nZXN0IFJvb3QgQ0EwHhcNMjYxMjAyMTkyNzUxWhcNMzYxMTIwMTkyNzUxW"
    "jBCMRcw\\nFQYDVQQKDA5zaG9ydGNlcnQgdGVzdDEnMCUGA1UEAwwec2hvcnRjZXJ0IF"
    "Rlc3Qg\\nSW50ZXJtZWRpYXRlIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELqF"
    "BKEhT\\n8RV41jiH17RS0ZJ2owktJdwBa8ptE7dD8wF7GWOCCZl4hbBbR0HbWWLIO8yq"
    "KMBg\\nXcAXuKSDJZm4xKNmMGQwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgNVHQ8BAf8EB"
    "AMC\\nAQYwHQYDVR0OBBYEFLnZskmzxJnInud6AgEITAeKvrcgMB8GA1UdIwQYMBaAFN"
    "TX\\ngcvusGb8kzk8uvf82/IqFcgOMAoGCCqGSM49BAMCA0cAMEQCIG/05tdXdqt+mIV"
    "p\\nIjMvEI9iHBrVcAy3AWaf9m/407qLAiASvWLPxdwn37tve4oEktvgbHLLac9JrmfB"
    "\\nzdKcgFBqdw==\\n-----END CERTIFICATE-----\\n\"],\"tlsOptions\":{\""
    "cipherSuites\":[\"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\",\""
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"],\"minVersion\":1.2,\"maxV"
    "ersion\":1.3,\"renegotiation\":false}}\n";

/* A real GET /1.0/provisioners page of the harness CA. */
static const char real_provisioners[] =
    "{\"provisioners\":[{\"type\":\"ACME\",\"name\":\"acme\",\"claims\":{"
    "\"allowRenewalAfterExpiry\":true}},{\"type\":\"JWK\",\"name\":\"jwk"
    "\",\"key\":{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"CjFCP0CeX1nnOjS"
    "9fJcGWRnGwu0h7HbAbevkz-ChP-0\",\"crv\":\"P-256\",\"alg\":\"ES256\","
    "\"x\":\"Ilr_ppzZX0XDsJHpLOyHvOPwnWojGoJrRxjzA-zVfIA\",\"y\":\"sGho7p"
    "NH27TefCfV_KjEYfWML_L_dcaRP1TSEFEidxA\"},\"encryptedKey\":\"eyJhbGci"
    "OiJQQkVTMi1IUzI1NitBMTI4S1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6IkEyNTZH"
    "Q00iLCJwMmMiOjEwMDAwMCwicDJzIjoiQ2ZSWU5fdnhaTUN4LUhOVXNiSVphZyJ9.-J7"
    "61t8tdpRAi6MDEQ9si6E3cPfN8TWxA2jZSDtohY8JKasnF5gAog.fVQa4ty-bb2JycLA"
    ".HtjpxLhJepEt-K8BbFgFrL-B6X4Mj5qjnAbQTIpkmWSclIxXyjydCQr3TBYO3oDhm-f"
    "0u_CtMDnaAc1IIB6sJQGeMFws6aff3ednRKvqiB17S0TsbFawHq-5E_GNYBJdBODzOKd"
    "2Hjbk9rAm0epMiQGcDte7hOOlE8Ul8vlZSMCMzCqqtdwo_3axZMQy6EkIBVJa9BaYngu"
    "y8GUr5exFh5aRufn6TvVMCfI6k-UWznFZXYBsgjY5KtkBiAmMwgs-Nmo-6RsyKQ_BLkF"
    "RePoxKT3LJMoTHyAMIpR8CB4Jrip6YYZVO6KvaC1l9MVUdEP_484OnU_u3CauSEiwKMQ"
    ".V5yMMJxKUUaJGQZ9BoBE2w\",\"claims\":{\"allowRenewalAfterExpiry\":tr"
    "ue}}],\"nextCursor\":\"\"}\n";

/* ------------------------------------------------------------ helpers */

static struct secret pw_of(const char *s)
{
    return (struct secret){ (uint8_t *)s, strlen(s) };
}

static EVP_PKEY *p256(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A certificate for key, signed by issuer/ikey (self-signed when NULL):
 * CN cn (none when NULL), SANs (comma-separated, "DNS:x,IP:y"), CA or
 * leaf (digitalSignature, serverAuth+clientAuth), valid from nb to na
 * seconds relative to now. */
static X509 *mkcert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                    const char *cn, const char *sans, int ca, long nb, long na)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *e;
    unsigned char sn[16];

    CU_ASSERT_FATAL(x != NULL);
    X509_set_version(x, X509_VERSION_3);
    RAND_bytes(sn, sizeof(sn));
    sn[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(sn, sizeof(sn), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    if (cn)
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
                                   MBSTRING_ASC, (const unsigned char *)cn,
                                   -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                   : X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                            ca ? "critical,keyCertSign,cRLSign"
                               : "critical,digitalSignature");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ca) {
        e = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage,
                                "serverAuth,clientAuth");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (sans) {
        e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, sans);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    CU_ASSERT_FATAL(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static char *pem_of(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *p;
    long n;
    char *s;

    PEM_write_bio_X509(b, x);
    n = BIO_get_mem_data(b, &p);
    s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static char *write_tmp(const char *content)
{
    char *path = strdup("/tmp/test-stepca.XXXXXX");
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, content, strlen(content)) ==
                    (ssize_t)strlen(content));
    close(fd);
    return path;
}

/* A small PKI: root, intermediate, and a leaf for a fresh key. */
struct pki {
    EVP_PKEY *rkey, *ikey, *lkey;
    X509 *root, *inter, *leaf;
    STACK_OF(X509) *chain; /* the intermediate */
};

static void pki_make(struct pki *p, const char *cn, const char *sans, long nb,
                     long na)
{
    p->rkey = p256();
    p->ikey = p256();
    p->lkey = p256();
    p->root = mkcert(p->rkey, NULL, NULL, "Test Root", NULL, 1, -86400,
                     86400);
    p->inter = mkcert(p->ikey, p->root, p->rkey, "Test Intermediate", NULL, 1,
                      -86400, 86400);
    p->leaf = mkcert(p->lkey, p->inter, p->ikey, cn, sans, 0, nb, na);
    p->chain = sk_X509_new_null();
    X509_up_ref(p->inter);
    sk_X509_push(p->chain, p->inter);
}

static void pki_done(struct pki *p)
{
    EVP_PKEY_free(p->rkey);
    EVP_PKEY_free(p->ikey);
    EVP_PKEY_free(p->lkey);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf);
    sk_X509_pop_free(p->chain, X509_free);
}

static char *private_jwk_text(const char *d, const char *x, const char *y,
                              const char *kid)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv",
                          "P-256", "d", d, "x", x, "y", y);
    char *s;

    if (kid)
        json_object_set_new(o, "kid", json_string(kid));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Checks that key's public point is (x, y) (base64url). */
static void assert_key_xy(EVP_PKEY *k, const char *x, const char *y)
{
    json_t *jwk = NULL;

    CU_ASSERT_FATAL(jws_jwk(k, &jwk) == 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "x")), x);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jwk, "y")), y);
    json_decref(jwk);
}

/* ---------------------------------------------------------------- JWE */

static void decrypt_to_key(const char *jwe, const char *pw, const char *x,
                           const char *y, const char *kid_want)
{
    struct secret p = pw_of(pw), out = { 0 };
    EVP_PKEY *k = NULL;
    char *kid = NULL, *tp = NULL;

    CU_ASSERT_FATAL(stepca_jwe_decrypt(jwe, strlen(jwe), &p, &out) == 0);
    CU_ASSERT(out.len > 0 && out.data[0] == '{');
    CU_ASSERT_FATAL(stepca_jwk_private((const char *)out.data, out.len, &k,
                                       &kid) == 0);
    assert_key_xy(k, x, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kid);
    CU_ASSERT_STRING_EQUAL(kid, kid_want);
    CU_ASSERT_FATAL(jws_thumbprint(k, &tp) == 0);
    CU_ASSERT_STRING_EQUAL(tp, kid_want);
    free(tp);
    free(kid);
    EVP_PKEY_free(k);
    secret_wipe(&out);
}

static void t_jwe_vectors(void)
{
    decrypt_to_key(py_jwe, PY_PASSWORD, PY_X, PY_Y, PY_KID);
    decrypt_to_key(py_jwe_1000, PY_PASSWORD, PY_X, PY_Y, PY_KID);
    decrypt_to_key(go_jwe, GO_PASSWORD, GO_X, GO_Y, GO_KID);
}

static void t_jwe_wrong_password(void)
{
    struct secret p = pw_of("correct horse battery stapler"), out = { 0 };
    struct secret g = pw_of(GO_PASSWORD), e = { 0 };

    CU_ASSERT(stepca_jwe_decrypt(py_jwe, strlen(py_jwe), &p, &out) ==
              -EKEYREJECTED);
    CU_ASSERT_PTR_NULL(out.data);
    /* the other vector's password */
    CU_ASSERT(stepca_jwe_decrypt(py_jwe_1000, strlen(py_jwe_1000), &g, &out) ==
              -EKEYREJECTED);
    CU_ASSERT(stepca_jwe_decrypt(py_jwe, strlen(py_jwe), &e, &out) == -EINVAL);
    CU_ASSERT(stepca_jwe_decrypt(py_jwe, strlen(py_jwe), NULL, &out) ==
              -EINVAL);
}

static void t_jwe_p2c_bounds(void)
{
    struct secret p = pw_of(PY_PASSWORD), out = { 0 };
    struct stepca_jwe j = { 0 };
    struct timespec t0, t1;

    /* parsed fine, refused before any PBKDF2 work */
    CU_ASSERT_FATAL(stepca_jwe_parse(py_jwe_999, strlen(py_jwe_999), &j) == 0);
    CU_ASSERT(j.p2c == 999);
    stepca_jwe_done(&j);
    CU_ASSERT_FATAL(stepca_jwe_parse(py_jwe_1000001, strlen(py_jwe_1000001),
                                     &j) == 0);
    CU_ASSERT(j.p2c == 1000001);
    stepca_jwe_done(&j);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT(stepca_jwe_decrypt(py_jwe_999, strlen(py_jwe_999), &p, &out) ==
              -EOPNOTSUPP);
    CU_ASSERT(stepca_jwe_decrypt(py_jwe_1000001, strlen(py_jwe_1000001), &p,
                                 &out) == -EOPNOTSUPP);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT((t1.tv_sec - t0.tv_sec) * 1000 +
                  (t1.tv_nsec - t0.tv_nsec) / 1000000 < 50);
    CU_ASSERT_PTR_NULL(out.data);
    /* the bounds themselves are accepted */
    CU_ASSERT(stepca_jwe_decrypt(py_jwe_1000, strlen(py_jwe_1000), &p, &out) ==
              0);
    secret_wipe(&out);
}

/* Replace segment i (0-based) of a compact JWE. */
static char *with_segment(const char *jwe, int i, const char *seg)
{
    char *copy = strdup(jwe), *parts[5], *save = NULL, *out;
    size_t n = strlen(jwe) + strlen(seg) + 8;
    int k = 0;

    for (char *t = strtok_r(copy, ".", &save); t && k < 5;
         t = strtok_r(NULL, ".", &save))
        parts[k++] = t;
    CU_ASSERT_FATAL(k == 5);
    parts[i] = (char *)seg;
    out = malloc(n);
    snprintf(out, n, "%s.%s.%s.%s.%s", parts[0], parts[1], parts[2], parts[3],
             parts[4]);
    free(copy);
    return out;
}

static char *segment_of(const char *jwe, int i)
{
    const char *s = jwe, *e;

    for (int k = 0; k < i; k++)
        s = strchr(s, '.') + 1;
    e = strchr(s, '.');
    return e ? strndup(s, (size_t)(e - s)) : strdup(s);
}

/* Flip one base64url character to another valid one (keeps the length
 * and the canonical trailing bits when not the last character). */
static void flip_char(char *s, size_t at)
{
    s[at] = s[at] == 'A' ? 'B' : 'A';
}

static void t_jwe_tampered(void)
{
    struct secret p = pw_of(PY_PASSWORD), out = { 0 };
    char *seg, *bad;

    /* tag */
    seg = segment_of(py_jwe_1000, 4);
    flip_char(seg, 0);
    bad = with_segment(py_jwe_1000, 4, seg);
    CU_ASSERT(stepca_jwe_decrypt(bad, strlen(bad), &p, &out) == -EKEYREJECTED);
    free(seg);
    free(bad);
    /* ciphertext */
    seg = segment_of(py_jwe_1000, 3);
    flip_char(seg, 5);
    bad = with_segment(py_jwe_1000, 3, seg);
    CU_ASSERT(stepca_jwe_decrypt(bad, strlen(bad), &p, &out) == -EKEYREJECTED);
    free(seg);
    free(bad);
    /* IV */
    seg = segment_of(py_jwe_1000, 2);
    flip_char(seg, 3);
    bad = with_segment(py_jwe_1000, 2, seg);
    CU_ASSERT(stepca_jwe_decrypt(bad, strlen(bad), &p, &out) == -EKEYREJECTED);
    free(seg);
    free(bad);
    /* wrapped key */
    seg = segment_of(py_jwe_1000, 1);
    flip_char(seg, 7);
    bad = with_segment(py_jwe_1000, 1, seg);
    CU_ASSERT(stepca_jwe_decrypt(bad, strlen(bad), &p, &out) == -EKEYREJECTED);
    free(seg);
    free(bad);
    /* the protected header (AAD) with one more member: same p2s/p2c, so
     * the key unwraps, but the tag no longer verifies */
    {
        uint8_t *h = NULL;
        size_t hl = 0;
        char *hseg = segment_of(py_jwe_1000, 0), *txt, *enc = NULL;
        json_t *o;

        CU_ASSERT_FATAL(jws_b64url_decode(hseg, strlen(hseg), 4096, &h, &hl) ==
                        0);
        o = json_loadb((const char *)h, hl, 0, NULL);
        json_object_set_new(o, "x-extra", json_true());
        txt = json_dumps(o, JSON_COMPACT);
        CU_ASSERT_FATAL(jws_b64url_encode(txt, strlen(txt), &enc) == 0);
        bad = with_segment(py_jwe_1000, 0, enc);
        CU_ASSERT(stepca_jwe_decrypt(bad, strlen(bad), &p, &out) ==
                  -EKEYREJECTED);
        free(bad);
        free(enc);
        free(txt);
        json_decref(o);
        free(h);
        free(hseg);
    }
    CU_ASSERT_PTR_NULL(out.data);
}

static char *jwe_with_header(const char *jwe, const char *header_json)
{
    char *enc = NULL, *out;

    CU_ASSERT_FATAL(jws_b64url_encode(header_json, strlen(header_json),
                                      &enc) == 0);
    out = with_segment(jwe, 0, enc);
    free(enc);
    return out;
}

static void t_jwe_malformed(void)
{
    static const char *const bad[] = {
        "", "a.b.c.d", "a.b.c.d.e.f", "....", "e30.e30.e30.e30.e30",
        "!!!.AAAA.AAAA.AAAA.AAAA",
    };
    static const struct {
        const char *hdr;
        int want;
    } hdrs[] = {
        { "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"p2c\":1000,"
          "\"p2s\":\"AAAAAAAAAAA\"}",
          -EOPNOTSUPP },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A128GCM\",\"p2c\":1000,"
          "\"p2s\":\"AAAAAAAAAAA\"}", -EOPNOTSUPP },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"zip\":\"DEF\","
          "\"p2c\":1000,\"p2s\":\"AAAAAAAAAAA\"}", -EOPNOTSUPP },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\","
          "\"crit\":[\"x\"],\"p2c\":1000,\"p2s\":\"AAAAAAAAAAA\"}",
          -EOPNOTSUPP },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":1000}",
          -EBADMSG },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\","
          "\"p2c\":\"1000\",\"p2s\":\"AAAAAAAAAAA\"}", -EBADMSG },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":-5,"
          "\"p2s\":\"AAAAAAAAAAA\"}", -EBADMSG },
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":1000,"
          "\"p2s\":\"AAAA\"}", -EBADMSG }, /* 3-byte salt */
        { "{\"alg\":\"PBES2-HS256+A128KW\",\"alg\":\"PBES2-HS256+A128KW\","
          "\"enc\":\"A256GCM\",\"p2c\":1000,\"p2s\":\"AAAAAAAAAAA\"}",
          -EBADMSG }, /* duplicate member */
        { "[1]", -EBADMSG },
    };
    struct secret p = pw_of(PY_PASSWORD), out = { 0 };
    struct stepca_jwe j = { 0 };
    char *s, *seg;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(stepca_jwe_parse(bad[i], strlen(bad[i]), &j) == -EBADMSG);
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        s = jwe_with_header(py_jwe_1000, hdrs[i].hdr);
        CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == hdrs[i].want);
        CU_ASSERT(stepca_jwe_decrypt(s, strlen(s), &p, &out) == hdrs[i].want);
        free(s);
    }
    /* wrong lengths of the wrapped key, IV, tag */
    seg = segment_of(py_jwe_1000, 1);
    seg[strlen(seg) - 2] = '\0';
    s = with_segment(py_jwe_1000, 1, seg);
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == -EBADMSG);
    free(s);
    free(seg);
    s = with_segment(py_jwe_1000, 2, "AAAAAAAAAAAAAAAA"); /* 12 -> 12 ok */
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == 0);
    stepca_jwe_done(&j);
    free(s);
    s = with_segment(py_jwe_1000, 2, "AAAAAAAAAAAAAAAAAAAA"); /* 15 bytes */
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == -EBADMSG);
    free(s);
    s = with_segment(py_jwe_1000, 4, "AAAAAAAAAAAAAAAAAAAAAA"); /* 16 ok */
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == 0);
    stepca_jwe_done(&j);
    free(s);
    s = with_segment(py_jwe_1000, 4, "AAAAAAAAAAAAAAAAAAAA");
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == -EBADMSG);
    free(s);
    s = with_segment(py_jwe_1000, 3, "");
    CU_ASSERT(stepca_jwe_parse(s, strlen(s), &j) == -EBADMSG);
    free(s);
    /* every truncation fails cleanly */
    for (size_t n = 0; n < strlen(py_jwe_1000); n++) {
        int r = stepca_jwe_decrypt(py_jwe_1000, n, &p, &out);

        CU_ASSERT(r == -EBADMSG || r == -EKEYREJECTED);
    }
    CU_ASSERT_PTR_NULL(out.data);
}

/* ---------------------------------------------------------------- JWK */

static void t_jwk_private(void)
{
    char *txt = private_jwk_text(PY_D, PY_X, PY_Y, PY_KID), *kid = NULL;
    EVP_PKEY *k = NULL;

    CU_ASSERT_FATAL(stepca_jwk_private(txt, strlen(txt), &k, &kid) == 0);
    assert_key_xy(k, PY_X, PY_Y);
    CU_ASSERT_STRING_EQUAL(kid, PY_KID);
    EVP_PKEY_free(k);
    free(kid);
    free(txt);
    k = NULL;
    kid = NULL;
    /* no kid */
    txt = private_jwk_text(GO_D, GO_X, GO_Y, NULL);
    CU_ASSERT_FATAL(stepca_jwk_private(txt, strlen(txt), &k, &kid) == 0);
    CU_ASSERT_PTR_NULL(kid);
    assert_key_xy(k, GO_X, GO_Y);
    EVP_PKEY_free(k);
    free(txt);
}

static void t_jwk_refused(void)
{
    static const char *const bad[] = {
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" PY_X "\",\"y\":\"" PY_Y
        "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"" PY_D "\",\"x\":\"" PY_X
        "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"" PY_D "\",\"x\":\"" PY_X
        "\",\"y\":\"" PY_Y "\",\"d\":\"" PY_D "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"AAAA\",\"x\":\"" PY_X
        "\",\"y\":\"" PY_Y "\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"" PY_D "\",\"x\":\"" PY_X
        "\",\"y\":\"" PY_Y "\",\"kid\":\"has space\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"" PY_D "\",\"x\":\"" PY_X
        "\",\"y\":\"" PY_Y "\",\"kid\":7}",
        "[]", "", "{",
    };
    char *txt;
    EVP_PKEY *k = NULL;
    char *kid = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(stepca_jwk_private(bad[i], strlen(bad[i]), &k, &kid) ==
                  -EBADMSG);
    /* d of another key: not a key pair */
    txt = private_jwk_text(GO_D, PY_X, PY_Y, NULL);
    CU_ASSERT(stepca_jwk_private(txt, strlen(txt), &k, &kid) == -EBADMSG);
    free(txt);
    /* y off the curve */
    txt = private_jwk_text(PY_D, PY_X, GO_Y, NULL);
    CU_ASSERT(stepca_jwk_private(txt, strlen(txt), &k, &kid) == -EBADMSG);
    free(txt);
    txt = "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}";
    CU_ASSERT(stepca_jwk_private(txt, strlen(txt), &k, &kid) == -EOPNOTSUPP);
    txt = "{\"kty\":\"EC\",\"crv\":\"P-384\",\"d\":\"" PY_D "\",\"x\":\"" PY_X
          "\",\"y\":\"" PY_Y "\"}";
    CU_ASSERT(stepca_jwk_private(txt, strlen(txt), &k, &kid) == -EOPNOTSUPP);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NULL(kid);
}

static void t_provisioner_from_file(void)
{
    char *txt = private_jwk_text(PY_D, PY_X, PY_Y, "custom-kid"), *path;
    struct stepca_provisioner *p = NULL;
    char err[512];

    path = write_tmp(txt);
    CU_ASSERT_FATAL(stepca_provisioner_load(NULL, "jwk", NULL, path, &p, err,
                                            sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(stepca_provisioner_kid(p), "custom-kid");
    stepca_provisioner_free(p);
    p = NULL;
    unlink(path);
    free(path);
    free(txt);
    /* without a kid: the thumbprint */
    txt = private_jwk_text(PY_D, PY_X, PY_Y, NULL);
    path = write_tmp(txt);
    CU_ASSERT_FATAL(stepca_provisioner_load(NULL, "jwk", NULL, path, &p, err,
                                            sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(stepca_provisioner_kid(p), PY_KID);
    stepca_provisioner_free(p);
    p = NULL;
    unlink(path);
    free(path);
    free(txt);
    /* not a JWK */
    path = write_tmp("not json\n");
    CU_ASSERT(stepca_provisioner_load(NULL, "jwk", NULL, path, &p, err,
                                      sizeof(err)) == -EBADMSG);
    CU_ASSERT(strstr(err, "is not a private EC P-256 JWK") != NULL);
    unlink(path);
    free(path);
    CU_ASSERT(stepca_provisioner_load(NULL, "jwk", NULL, "/nonexistent/x", &p,
                                      err, sizeof(err)) == -ENOENT);
    /* exactly one of password and file */
    {
        struct secret pw = pw_of("x");

        CU_ASSERT(stepca_provisioner_load(NULL, "jwk", &pw, "/x", &p, err,
                                          sizeof(err)) == -EINVAL);
        CU_ASSERT(stepca_provisioner_load(NULL, "jwk", NULL, NULL, &p, err,
                                          sizeof(err)) == -EINVAL);
        CU_ASSERT(stepca_provisioner_load(NULL, "", NULL, "/x", &p, err,
                                          sizeof(err)) == -EINVAL);
    }
    CU_ASSERT_PTR_NULL(p);
}

/* ------------------------------------------------------------- tokens */

struct jwt {
    json_t *hdr, *claims;
    uint8_t *sig;
    size_t sig_len;
    char *signing_input;
};

static void jwt_done(struct jwt *t)
{
    json_decref(t->hdr);
    json_decref(t->claims);
    free(t->sig);
    free(t->signing_input);
}

static void jwt_parse(const char *tok, struct jwt *t)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    uint8_t *h = NULL, *c = NULL;
    size_t hl, cl;

    CU_ASSERT_FATAL(d1 && d2 && !strchr(d2 + 1, '.'));
    CU_ASSERT_FATAL(jws_b64url_decode(tok, (size_t)(d1 - tok), 1 << 16, &h,
                                      &hl) == 0);
    CU_ASSERT_FATAL(jws_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1 << 16,
                                      &c, &cl) == 0);
    CU_ASSERT_FATAL(jws_b64url_decode(d2 + 1, strlen(d2 + 1), 1024, &t->sig,
                                      &t->sig_len) == 0);
    t->hdr = json_loadb((const char *)h, hl, JSON_REJECT_DUPLICATES, NULL);
    t->claims = json_loadb((const char *)c, cl, JSON_REJECT_DUPLICATES, NULL);
    CU_ASSERT_FATAL(json_is_object(t->hdr) && json_is_object(t->claims));
    t->signing_input = strndup(tok, (size_t)(d2 - tok));
    free(h);
    free(c);
}

/* ES256: R||S -> DER, verified over the signing input. */
static int es256_verify(EVP_PKEY *k, const struct jwt *t)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    unsigned char *der = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int n, ok;

    if (t->sig_len != 64)
        return 0;
    ECDSA_SIG_set0(s, BN_bin2bn(t->sig, 32, NULL),
                   BN_bin2bn(t->sig + 32, 32, NULL));
    n = i2d_ECDSA_SIG(s, &der);
    ok = EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k) == 1 &&
         EVP_DigestVerify(m, der, (size_t)n,
                          (const unsigned char *)t->signing_input,
                          strlen(t->signing_input)) == 1;
    OPENSSL_free(der);
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(m);
    return ok;
}

static const char *str_of(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t int_of(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static int is_hex(const char *s, size_t want)
{
    if (!s || strlen(s) != want)
        return 0;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s))
            return 0;
    return 1;
}

/* x5cInsecure entry i must be the standard base64 DER of x. */
static void assert_x5c(const json_t *arr, size_t i, X509 *x)
{
    const char *b64 = json_string_value(json_array_get(arr, i));
    unsigned char *der = NULL, buf[4096];
    const unsigned char *p = buf;
    int n = i2d_X509(x, &der), m;
    X509 *back;

    CU_ASSERT_FATAL(b64 != NULL);
    CU_ASSERT(strchr(b64, '-') == NULL && strchr(b64, '_') == NULL);
    m = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)strlen(b64));
    CU_ASSERT_FATAL(m >= n);
    back = d2i_X509(NULL, &p, m);
    CU_ASSERT_FATAL(back != NULL);
    CU_ASSERT(X509_cmp(back, x) == 0);
    X509_free(back);
    OPENSSL_free(der);
}

static void t_renew_token_shape(void)
{
    static const char aud[] = "https://ca.internal.test:9443/1.0/renew";
    struct pki p = { 0 };
    struct jwt t = { 0 }, t2 = { 0 };
    char *tok = NULL, *tok2 = NULL, *tp = NULL;
    const json_t *x5c;

    pki_make(&p, "api.internal.test", "DNS:api.internal.test,IP:127.0.0.1",
             -60, 600);
    CU_ASSERT_FATAL(stepca_make_renew_token(p.leaf, p.chain, p.lkey, aud,
                                            1700000000, &tok) == 0);
    jwt_parse(tok, &t);
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "alg"), "ES256");
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "typ"), "JWT");
    CU_ASSERT_FATAL(jws_thumbprint(p.lkey, &tp) == 0);
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "kid"), tp);
    CU_ASSERT_PTR_NULL(json_object_get(t.hdr, "x5c"));
    x5c = json_object_get(t.hdr, "x5cInsecure");
    CU_ASSERT_FATAL(json_is_array(x5c) && json_array_size(x5c) == 2);
    assert_x5c(x5c, 0, p.leaf);
    assert_x5c(x5c, 1, p.inter);
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "iss"), "step-ca-client/1.0");
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "sub"), "api.internal.test");
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "aud"), aud);
    CU_ASSERT(int_of(t.claims, "iat") == 1700000000);
    CU_ASSERT(int_of(t.claims, "nbf") == 1700000000);
    CU_ASSERT(int_of(t.claims, "exp") == 1700000000 + 300);
    CU_ASSERT(is_hex(str_of(t.claims, "jti"), 64));
    CU_ASSERT(es256_verify(p.lkey, &t));
    CU_ASSERT(!es256_verify(p.ikey, &t));
    /* a second token differs (fresh jti) */
    CU_ASSERT_FATAL(stepca_make_renew_token(p.leaf, NULL, p.lkey, aud,
                                            1700000000, &tok2) == 0);
    jwt_parse(tok2, &t2);
    CU_ASSERT(json_array_size(json_object_get(t2.hdr, "x5cInsecure")) == 1);
    CU_ASSERT(strcmp(str_of(t.claims, "jti"), str_of(t2.claims, "jti")) != 0);
    jwt_done(&t2);
    free(tok2);
    tok2 = NULL;
    /* the key must be the leaf's */
    CU_ASSERT(stepca_make_renew_token(p.leaf, p.chain, p.ikey, aud, 0, &tok2) ==
              -EINVAL);
    CU_ASSERT_PTR_NULL(tok2);
    jwt_done(&t);
    free(tok);
    free(tp);
    pki_done(&p);
}

static void t_renew_token_no_cn(void)
{
    struct pki p = { 0 };
    struct jwt t = { 0 };
    char *tok = NULL;

    pki_make(&p, NULL, "IP:10.1.2.3,DNS:x.internal.test", -60, 600);
    CU_ASSERT_FATAL(stepca_make_renew_token(p.leaf, p.chain, p.lkey,
                                            "https://ca/1.0/renew", 1,
                                            &tok) == 0);
    jwt_parse(tok, &t);
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "sub"), "10.1.2.3");
    jwt_done(&t);
    free(tok);
    pki_done(&p);
}

static struct stepca_provisioner *test_prov(void)
{
    char *txt = private_jwk_text(PY_D, PY_X, PY_Y, PY_KID), *path;
    struct stepca_provisioner *p = NULL;

    path = write_tmp(txt);
    CU_ASSERT_FATAL(stepca_provisioner_load(NULL, "jwk", NULL, path, &p, NULL,
                                            0) == 0);
    unlink(path);
    free(path);
    free(txt);
    return p;
}

static void t_sign_token_shape(void)
{
    static const char aud[] = "https://ca.internal.test:9443/1.0/sign";
    static const char *const names[] = { "127.0.0.1", "api.internal.test",
                                         "0:0::1", "web.internal.test" };
    static const char *const ips[] = { "10.0.0.1", "::1" };
    struct stepca_provisioner *p = test_prov();
    struct jwt t = { 0 };
    char *tok = NULL;
    const json_t *sans;
    EVP_PKEY *pub = NULL;
    char *txt;

    CU_ASSERT_FATAL(
        stepca_make_sign_token(p, aud, names, 4, 1700000000, &tok) == 0);
    jwt_parse(tok, &t);
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "alg"), "ES256");
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "typ"), "JWT");
    CU_ASSERT_STRING_EQUAL(str_of(t.hdr, "kid"), PY_KID);
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "iss"), "jwk");
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "aud"), aud);
    /* sub = the first DNS name (the CSR's CN) */
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "sub"), "api.internal.test");
    sans = json_object_get(t.claims, "sans");
    CU_ASSERT_FATAL(json_is_array(sans) && json_array_size(sans) == 4);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(sans, 0)),
                           "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(sans, 2)), "::1");
    CU_ASSERT(int_of(t.claims, "iat") == 1700000000);
    CU_ASSERT(int_of(t.claims, "nbf") == 1700000000);
    CU_ASSERT(int_of(t.claims, "exp") == 1700000300);
    CU_ASSERT(is_hex(str_of(t.claims, "jti"), 64));
    /* signed by the provisioner key: verify with its public half */
    txt = private_jwk_text(PY_D, PY_X, PY_Y, NULL);
    CU_ASSERT_FATAL(stepca_jwk_private(txt, strlen(txt), &pub, NULL) == 0);
    CU_ASSERT(es256_verify(pub, &t));
    free(txt);
    EVP_PKEY_free(pub);
    jwt_done(&t);
    free(tok);
    tok = NULL;
    /* IPs only: sub = the first IP */
    CU_ASSERT_FATAL(stepca_make_sign_token(p, aud, ips, 2, 1, &tok) == 0);
    memset(&t, 0, sizeof(t));
    jwt_parse(tok, &t);
    CU_ASSERT_STRING_EQUAL(str_of(t.claims, "sub"), "10.0.0.1");
    jwt_done(&t);
    free(tok);
    tok = NULL;
    /* refused names */
    {
        static const char *const bad[] = { "*.wild.test" };
        static const char *const bad2[] = { "a..b" };

        CU_ASSERT(stepca_make_sign_token(p, aud, bad, 1, 1, &tok) == -EINVAL);
        CU_ASSERT(stepca_make_sign_token(p, aud, bad2, 1, 1, &tok) == -EINVAL);
        CU_ASSERT(stepca_make_sign_token(p, aud, names, 0, 1, &tok) == -EINVAL);
        CU_ASSERT_PTR_NULL(tok);
    }
    stepca_provisioner_free(p);
}

/* ------------------------------------------------------------ parsers */

static void t_sign_response_real(void)
{
    struct stepca_result r = { 0 };
    BIO *b;
    X509 *leaf, *inter;

    CU_ASSERT_FATAL(stepca_parse_sign_response(real_sign_response,
                                               strlen(real_sign_response),
                                               &r) == 0);
    CU_ASSERT(r.chain_len == strlen(r.chain_pem));
    b = BIO_new_mem_buf(r.chain_pem, (int)r.chain_len);
    leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    inter = PEM_read_bio_X509(b, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(leaf);
    CU_ASSERT_PTR_NOT_NULL(inter);
    CU_ASSERT_PTR_NULL(PEM_read_bio_X509(b, NULL, NULL, NULL));
    ERR_clear_error();
    CU_ASSERT(X509_check_host(leaf, "web.internal.test", 0, 0, NULL) == 1);
    CU_ASSERT(X509_check_issued(inter, leaf) == X509_V_OK);
    X509_free(leaf);
    X509_free(inter);
    BIO_free(b);
    stepca_result_done(&r);
    stepca_result_done(&r);
}

static char *sign_response(const char *crt, const char *ca, json_t *chain)
{
    json_t *o = json_object();
    char *s;

    if (crt)
        json_object_set_new(o, "crt", json_string(crt));
    if (ca)
        json_object_set_new(o, "ca", json_string(ca));
    if (chain)
        json_object_set_new(o, "certChain", chain);
    json_object_set_new(o, "tlsOptions", json_pack("{s:f}", "minVersion", 1.2));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int parse_count(const char *body, int *ncerts)
{
    struct stepca_result r = { 0 };
    int k = stepca_parse_sign_response(body, strlen(body), &r);
    const char *p = r.chain_pem;

    *ncerts = 0;
    while (p && (p = strstr(p, "BEGIN CERTIFICATE")) != NULL) {
        (*ncerts)++;
        p++;
    }
    stepca_result_done(&r);
    return k;
}

static void t_sign_response_shapes(void)
{
    struct pki p = { 0 };
    char *leaf, *inter, *body, *two, *junk;
    int n;
    size_t l;

    pki_make(&p, "a.test", "DNS:a.test", -60, 600);
    leaf = pem_of(p.leaf);
    inter = pem_of(p.inter);
    /* crt + ca, no certChain */
    body = sign_response(leaf, inter, NULL);
    CU_ASSERT(parse_count(body, &n) == 0 && n == 2);
    free(body);
    /* crt only ("ca" null) */
    body = strdup("{\"crt\":null}");
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    body = sign_response(leaf, NULL, NULL);
    CU_ASSERT(parse_count(body, &n) == 0 && n == 1);
    free(body);
    /* certChain only */
    body = sign_response(NULL, NULL, json_pack("[s,s]", leaf, inter));
    CU_ASSERT(parse_count(body, &n) == 0 && n == 2);
    free(body);
    /* crt disagrees with certChain[0] */
    body = sign_response(inter, NULL, json_pack("[s,s]", leaf, inter));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    /* empty / too long / wrong-typed certChain */
    body = sign_response(leaf, NULL, json_array());
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    {
        json_t *a = json_array();

        for (int i = 0; i < 9; i++)
            json_array_append_new(a, json_string(leaf));
        body = sign_response(NULL, NULL, a);
        CU_ASSERT(parse_count(body, &n) == -EBADMSG);
        free(body);
    }
    body = sign_response(NULL, NULL, json_pack("[i]", 1));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    body = sign_response(NULL, NULL, json_string(leaf));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    /* two certificates in one entry; junk before / after */
    l = strlen(leaf) + strlen(inter) + 32;
    two = malloc(l);
    snprintf(two, l, "%s%s", leaf, inter);
    body = sign_response(NULL, NULL, json_pack("[s]", two));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    snprintf(two, l, "junk\n%s", leaf);
    body = sign_response(NULL, NULL, json_pack("[s]", two));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    snprintf(two, l, "%sjunk", leaf);
    body = sign_response(NULL, NULL, json_pack("[s]", two));
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    snprintf(two, l, "\n  %s\n\n", leaf); /* whitespace is fine */
    body = sign_response(NULL, NULL, json_pack("[s]", two));
    CU_ASSERT(parse_count(body, &n) == 0 && n == 1);
    free(body);
    free(two);
    /* another PEM type */
    junk = strdup(leaf);
    memcpy(strstr(junk, "BEGIN CERTIFICATE"), "BEGIN CERTIFICAXE", 17);
    body = sign_response(junk, NULL, NULL);
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    free(junk);
    /* not JSON, not an object, duplicates, a NUL, too large */
    CU_ASSERT(parse_count("", &n) == -EBADMSG);
    CU_ASSERT(parse_count("404 page not found\n", &n) == -EBADMSG);
    CU_ASSERT(parse_count("[]", &n) == -EBADMSG);
    CU_ASSERT(parse_count("{}", &n) == -EBADMSG);
    l = strlen(leaf) * 2 + 64;
    body = malloc(l);
    snprintf(body, l, "{\"crt\":\"x\",\"crt\":\"y\"}");
    CU_ASSERT(parse_count(body, &n) == -EBADMSG);
    free(body);
    CU_ASSERT(parse_count("{\"crt\":\"-----BEGIN CERTIFICATE-----\\u0000\"}",
                          &n) == -EBADMSG);
    {
        size_t big = STEPCA_MAX_REPLY + 1;
        char *huge = malloc(big + 1);
        struct stepca_result r = { 0 };

        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        huge[big] = '\0';
        CU_ASSERT(stepca_parse_sign_response(huge, big, &r) == -EMSGSIZE);
        free(huge);
    }
    free(leaf);
    free(inter);
    pki_done(&p);
}

static void t_error_parser(void)
{
    char msg[STEPCA_MAX_MESSAGE + 1], small[10];
    const char *s;
    char *big;

    s = "{\"status\":400,\"message\":\"The request could not be completed: "
        "missing client certificate.\"}";
    CU_ASSERT(stepca_parse_error(s, strlen(s), msg, sizeof(msg)) == 400);
    CU_ASSERT_STRING_EQUAL(msg, "The request could not be completed: missing "
                                "client certificate.");
    CU_ASSERT(stepca_parse_error(s, strlen(s), small, sizeof(small)) == 400);
    CU_ASSERT_STRING_EQUAL(small, "The reque");
    s = "{\"status\":401,\"message\":\"bad\\u001b[31m\\nline\\u00e9\"}";
    CU_ASSERT(stepca_parse_error(s, strlen(s), msg, sizeof(msg)) == 401);
    CU_ASSERT_STRING_EQUAL(msg, "bad?[31m?line??");
    s = "{\"message\":\"no status\"}";
    CU_ASSERT(stepca_parse_error(s, strlen(s), msg, sizeof(msg)) == 0);
    CU_ASSERT_STRING_EQUAL(msg, "no status");
    s = "{\"status\":500,\"message\":null}";
    CU_ASSERT(stepca_parse_error(s, strlen(s), msg, sizeof(msg)) == 500);
    CU_ASSERT_STRING_EQUAL(msg, "");
    {
        char xs[1001];

        memset(xs, 'x', 1000);
        xs[1000] = '\0';
        CU_ASSERT_FATAL(asprintf(&big, "{\"status\":403,\"message\":\"%s\"}",
                                 xs) > 0);
    }
    CU_ASSERT(stepca_parse_error(big, strlen(big), msg, sizeof(msg)) == 403);
    CU_ASSERT(strlen(msg) == STEPCA_MAX_MESSAGE);
    free(big);
    static const char *const bad[] = {
        "404 page not found\n", "", "[]", "{\"status\":\"400\"}",
        "{\"status\":-1}", "{\"status\":1000}", "{\"message\":5}",
        "{\"status\":400,\"status\":401}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = 'x';
        CU_ASSERT(stepca_parse_error(bad[i], strlen(bad[i]), msg,
                                     sizeof(msg)) == -EBADMSG);
        CU_ASSERT(msg[0] == '\0');
    }
    CU_ASSERT(stepca_parse_error("{}", 2, NULL, 0) == 0);
}

static void t_provisioners_real(void)
{
    struct stepca_prov_entry e = { 0 };
    char *next = NULL;

    CU_ASSERT(stepca_parse_provisioners(real_provisioners,
                                        strlen(real_provisioners), "jwk", &e,
                                        &next) == 1);
    CU_ASSERT_PTR_NULL(next);
    CU_ASSERT_PTR_NOT_NULL(e.pub);
    CU_ASSERT(e.kid && strlen(e.kid) == 43);
    CU_ASSERT(e.encrypted_key &&
              strncmp(e.encrypted_key,
                      "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLC", 38) == 0);
    {
        struct stepca_jwe j = { 0 };

        CU_ASSERT(stepca_jwe_parse(e.encrypted_key, strlen(e.encrypted_key),
                                   &j) == 0);
        CU_ASSERT(j.p2c == 100000);
        stepca_jwe_done(&j);
    }
    stepca_prov_entry_done(&e);
    /* the ACME one is not a JWK provisioner */
    CU_ASSERT(stepca_parse_provisioners(real_provisioners,
                                        strlen(real_provisioners), "acme", &e,
                                        &next) == 0);
    CU_ASSERT(stepca_parse_provisioners(real_provisioners,
                                        strlen(real_provisioners), "jw", &e,
                                        &next) == 0);
    CU_ASSERT_PTR_NULL(e.pub);
}

static char *prov_page(const char *entries, const char *next)
{
    size_t n = strlen(entries) + (next ? strlen(next) : 0) + 64;
    char *s = malloc(n);

    if (next)
        snprintf(s, n, "{\"provisioners\":[%s],\"nextCursor\":\"%s\"}", entries,
                 next);
    else
        snprintf(s, n, "{\"provisioners\":[%s]}", entries);
    return s;
}

#define JWK_ENTRY(name, extra)                                               \
    "{\"type\":\"JWK\",\"name\":\"" name "\",\"key\":{\"kty\":\"EC\","       \
    "\"crv\":\"P-256\",\"kid\":\"" PY_KID "\",\"x\":\"" PY_X "\",\"y\":\""   \
    PY_Y "\"}" extra "}"

static void t_provisioners_shapes(void)
{
    struct stepca_prov_entry e = { 0 };
    char *next = NULL, *s;

    s = prov_page("{\"type\":\"ACME\",\"name\":\"acme\"}", "0123abcd");
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) == 0);
    CU_ASSERT_STRING_EQUAL(next, "0123abcd");
    free(next);
    next = NULL;
    free(s);
    /* no encryptedKey: found, without one */
    s = prov_page(JWK_ENTRY("jwk", ""), "");
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) == 1);
    CU_ASSERT_PTR_NULL(next);
    CU_ASSERT_PTR_NULL(e.encrypted_key);
    CU_ASSERT_STRING_EQUAL(e.kid, PY_KID);
    stepca_prov_entry_done(&e);
    free(s);
    s = prov_page(JWK_ENTRY("jwk", ",\"encryptedKey\":\"a.b.c.d.e\""), NULL);
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) == 1);
    CU_ASSERT_STRING_EQUAL(e.encrypted_key, "a.b.c.d.e");
    stepca_prov_entry_done(&e);
    free(s);
    /* two of that name */
    s = prov_page(JWK_ENTRY("jwk", "") "," JWK_ENTRY("jwk", ""), NULL);
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) ==
              -ENOTUNIQ);
    free(s);
    /* another name, another type with that name: not ours */
    s = prov_page(JWK_ENTRY("jwk2", "") ",{\"type\":\"OIDC\",\"name\":\"jwk\"}",
                  NULL);
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) == 0);
    free(s);
    static const char *const bad[] = {
        "{}", "[]", "{\"provisioners\":{}}", "{\"provisioners\":[1]}",
        "{\"provisioners\":[{\"name\":\"jwk\"}]}",
        "{\"provisioners\":[],\"nextCursor\":\"a b\"}",
        "{\"provisioners\":[],\"nextCursor\":5}",
        "{\"provisioners\":[{\"type\":\"JWK\",\"name\":\"jwk\"}]}",
        "{\"provisioners\":[{\"type\":\"JWK\",\"name\":\"jwk\",\"key\":{}}]}",
        "{\"provisioners\":[" JWK_ENTRY("jwk", ",\"encryptedKey\":7") "]}",
        "{\"provisioners\":["
        JWK_ENTRY("jwk", ",\"encryptedKey\":\"a b\"") "]}",
        "{\"provisioners\":[],\"provisioners\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(stepca_parse_provisioners(bad[i], strlen(bad[i]), "jwk", &e,
                                            &next) == -EBADMSG);
    s = "{\"provisioners\":[{\"type\":\"JWK\",\"name\":\"jwk\",\"key\":"
        "{\"kty\":\"RSA\",\"kid\":\"k\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}]}";
    CU_ASSERT(stepca_parse_provisioners(s, strlen(s), "jwk", &e, &next) ==
              -EOPNOTSUPP);
    CU_ASSERT_PTR_NULL(e.pub);
    CU_ASSERT_PTR_NULL(next);
}

/* --------------------------------------------------------------- http */

static void t_names_and_csr(void)
{
    static const char *const names[] = {
        "10.0.0.1", "api.internal.test", "web.internal.test", "::ffff:1.2.3.4"
    };
    static const char *const ips[] = { "::1" };
    char v[HTTP_MAX_NAME + 1];
    const char *type;
    X509_REQ *x = NULL;
    X509_NAME *nm;
    STACK_OF(X509_EXTENSION) *exts;
    char cn[128];

    CU_ASSERT(ca_name_classify("0:0::1", &type, v, sizeof(v)) == 0);
    CU_ASSERT_STRING_EQUAL(type, "ip");
    CU_ASSERT_STRING_EQUAL(v, "::1");
    CU_ASSERT(ca_name_classify("Api-1.Test", &type, v, sizeof(v)) == 0);
    CU_ASSERT_STRING_EQUAL(type, "dns");
    static const char *const bad[] = { "", ".a", "a.", "a..b", "*.a",
                                       "a_b", "a b", "a/b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(ca_name_classify(bad[i], &type, v, sizeof(v)) == -EINVAL);
    {
        char label[80], longname[300];

        memset(label, 'a', 64);
        label[64] = '\0';
        CU_ASSERT(ca_name_classify(label, &type, v, sizeof(v)) == -EINVAL);
        memset(longname, 'a', 254);
        for (int i = 50; i < 254; i += 50)
            longname[i] = '.';
        longname[254] = '\0';
        CU_ASSERT(ca_name_classify(longname, &type, v, sizeof(v)) == -EINVAL);
        longname[253] = '\0';
        CU_ASSERT(ca_name_classify(longname, &type, v, sizeof(v)) == 0);
    }
    CU_ASSERT(ca_name_classify("a", &type, v, 10) == -EINVAL); /* vlen */

    {
        EVP_PKEY *k = p256();

        CU_ASSERT_FATAL(ca_make_csr(k, names, 4, &x) == 0);
        CU_ASSERT(X509_REQ_verify(x, k) == 1);
        nm = X509_REQ_get_subject_name(x);
        CU_ASSERT(X509_NAME_get_text_by_NID(nm, NID_commonName, cn,
                                            sizeof(cn)) > 0);
        CU_ASSERT_STRING_EQUAL(cn, "api.internal.test");
        exts = X509_REQ_get_extensions(x);
        CU_ASSERT(X509_EXTENSION_get_critical(
                      sk_X509_EXTENSION_value(exts, 0)) == 0);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(x);
        x = NULL;
        /* IPs only: no CN, SAN critical */
        CU_ASSERT_FATAL(ca_make_csr(k, ips, 1, &x) == 0);
        CU_ASSERT(X509_NAME_entry_count(X509_REQ_get_subject_name(x)) == 0);
        exts = X509_REQ_get_extensions(x);
        CU_ASSERT(X509_EXTENSION_get_critical(
                      sk_X509_EXTENSION_value(exts, 0)) == 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(x);
        x = NULL;
        CU_ASSERT(ca_make_csr(k, bad, 1, &x) == -EINVAL);
        CU_ASSERT_PTR_NULL(x);
        EVP_PKEY_free(k);
    }
}

static void t_body_and_sanitize(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char s[] = "ok\x1b[0m\r\n\x80z";

    CU_ASSERT(http_body_append(&buf, &len, &cap, 10, "hello", 5) == 0);
    CU_ASSERT(http_body_append(&buf, &len, &cap, 10, "world", 5) == 0);
    CU_ASSERT(len == 10 && strcmp(buf, "helloworld") == 0);
    CU_ASSERT(http_body_append(&buf, &len, &cap, 10, "!", 1) == -EMSGSIZE);
    CU_ASSERT(len == 10 && strcmp(buf, "helloworld") == 0);
    CU_ASSERT(cap <= 11);
    free(buf);
    http_sanitize(s);
    CU_ASSERT_STRING_EQUAL(s, "ok?[0m???z");
    CU_ASSERT(http_curl_errno(CURLE_COULDNT_CONNECT) == -ECONNREFUSED);
    CU_ASSERT(http_curl_errno(CURLE_OPERATION_TIMEDOUT) == -ETIMEDOUT);
    CU_ASSERT(http_curl_errno(CURLE_COULDNT_RESOLVE_HOST) == -EHOSTUNREACH);
    CU_ASSERT(http_curl_errno(CURLE_PEER_FAILED_VERIFICATION) == -EPERM);
}

/* ------------------------------------------------------------- handle */

static void t_new_args(void)
{
    struct pki p = { 0 };
    struct stepca *c = NULL;
    char *root;
    static const char *const bad[] = {
        "http://ca.test", "https://", "https:///x", "https://ca.test/path",
        "https://user@ca.test", "https://ca.test?x", "https://ca test",
        "ftp://ca.test",
    };

    pki_make(&p, "x", NULL, -60, 600);
    root = pem_of(p.root);
    {
        char *path = write_tmp(root);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            CU_ASSERT(stepca_new(bad[i], path, 5, &c) == -EINVAL);
        CU_ASSERT(stepca_new("https://ca.test", "/nonexistent", 5, &c) ==
                  -ENOENT);
        CU_ASSERT_PTR_NULL(c);
        CU_ASSERT_FATAL(stepca_new("https://ca.internal.test:9443/", path, 0,
                                   &c) == 0);
        stepca_free(c);
        unlink(path);
        free(path);
    }
    stepca_free(NULL);
    free(root);
    pki_done(&p);
}

/* A TLS server on 127.0.0.1 that requires a client certificate issued by
 * its root, for `conns` connections; it answers nothing. */
struct srv {
    int fd;
    int port;
    int conns;
    SSL_CTX *ctx;
    pthread_t th;
};

static void *srv_main(void *arg)
{
    struct srv *s = arg;

    for (int i = 0; i < s->conns; i++) {
        int cfd = accept(s->fd, NULL, NULL);
        SSL *ssl;
        char buf[512];

        if (cfd < 0)
            break;
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, cfd);
        if (SSL_accept(ssl) == 1)
            (void)SSL_read(ssl, buf, sizeof(buf)); /* TLS 1.3: verify here */
        SSL_free(ssl);
        close(cfd);
    }
    return NULL;
}

static void t_tls_refusal_class(void)
{
    struct pki p = { 0 };
    struct srv s = { .conns = 3 };
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    EVP_PKEY *skey = p256();
    X509 *scert, *expired;
    struct stepca *c = NULL;
    struct stepca_result res = { 0 };
    char err[512], url[64], *root, *path;
    X509_STORE *st;

    pki_make(&p, "client.test", "DNS:client.test", -7200, -3600);
    expired = p.leaf; /* expired an hour ago */
    scert = mkcert(skey, p.inter, p.ikey, "127.0.0.1", "IP:127.0.0.1", 0, -60,
                   3600);
    s.ctx = SSL_CTX_new(TLS_server_method());
    CU_ASSERT_FATAL(SSL_CTX_use_certificate(s.ctx, scert) == 1 &&
                    SSL_CTX_use_PrivateKey(s.ctx, skey) == 1);
    SSL_CTX_add1_chain_cert(s.ctx, p.inter);
    st = SSL_CTX_get_cert_store(s.ctx);
    X509_STORE_add_cert(st, p.root);
    X509_STORE_add_cert(st, p.inter);
    SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(bind(s.fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                    listen(s.fd, 4) == 0 &&
                    getsockname(s.fd, (struct sockaddr *)&a, &al) == 0);
    s.port = ntohs(a.sin_port);
    CU_ASSERT_FATAL(pthread_create(&s.th, NULL, srv_main, &s) == 0);

    root = pem_of(p.root);
    path = write_tmp(root);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", s.port);
    CU_ASSERT_FATAL(stepca_new(url, path, 5, &c) == 0);
    /* mTLS with an expired client certificate: the distinct class */
    CU_ASSERT(stepca_renew_mtls(c, expired, p.chain, p.lkey, &res, err,
                                sizeof(err)) == -EKEYEXPIRED);
    CU_ASSERT(strstr(err, "renew (mTLS): POST /1.0/renew: the CA refused our "
                          "client certificate") != NULL);
    CU_ASSERT(stepca_rekey_mtls(c, expired, p.chain, p.lkey, skey, &res, err,
                                sizeof(err)) == -EKEYEXPIRED);
    /* the same refusal without a client certificate is not that class */
    CU_ASSERT(stepca_renew_token(c, expired, p.chain, p.lkey, &res, err,
                                 sizeof(err)) == -ECONNRESET);
    CU_ASSERT(strncmp(err, "renew (token): POST /1.0/renew: ", 32) == 0);
    CU_ASSERT_PTR_NULL(res.chain_pem);
    /* the key must match the certificate */
    CU_ASSERT(stepca_renew_mtls(c, expired, p.chain, skey, &res, err,
                                sizeof(err)) == -EINVAL);
    stepca_free(c);
    pthread_join(s.th, NULL);
    close(s.fd);
    /* nobody listening any more */
    CU_ASSERT_FATAL(stepca_new(url, path, 5, &c) == 0);
    CU_ASSERT(stepca_renew_mtls(c, expired, p.chain, p.lkey, &res, err,
                                sizeof(err)) == -ECONNREFUSED);
    stepca_free(c);
    unlink(path);
    free(path);
    free(root);
    SSL_CTX_free(s.ctx);
    X509_free(scert);
    EVP_PKEY_free(skey);
    pki_done(&p);
}

/* An HTTPS server on 127.0.0.1 that answers each connection with the
 * next canned HTTP response (then closes it). */
struct canned {
    int fd;
    SSL_CTX *ctx;
    char **replies;
    size_t n;
    pthread_t th;
};

static void *canned_main(void *arg)
{
    struct canned *s = arg;

    for (size_t i = 0; i < s->n; i++) {
        int cfd = accept(s->fd, NULL, NULL);
        char buf[8192];
        size_t got = 0;
        SSL *ssl;

        if (cfd < 0)
            break;
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, cfd);
        if (SSL_accept(ssl) == 1) {
            /* the request: headers, empty body */
            while (got < sizeof(buf) - 1) {
                int k = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));

                if (k <= 0)
                    break;
                got += (size_t)k;
                buf[got] = '\0';
                if (strstr(buf, "\r\n\r\n"))
                    break;
            }
            for (size_t off = 0, len = strlen(s->replies[i]); off < len;) {
                int k = SSL_write(ssl, s->replies[i] + off, (int)(len - off));

                if (k <= 0)
                    break;
                off += (size_t)k;
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(cfd);
    }
    return NULL;
}

static char *http_reply(int status, const char *body)
{
    char *r = NULL;

    CU_ASSERT_FATAL(asprintf(&r,
                             "HTTP/1.1 %d X\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n"
                             "\r\n%s",
                             status, strlen(body), body) > 0);
    return r;
}

static char *chain_reply(X509 *leaf, X509 *inter)
{
    char *l = pem_of(leaf), *i = pem_of(inter), *body, *r;

    body = sign_response(l, i, json_pack("[s,s]", l, i));
    r = http_reply(201, body);
    free(body);
    free(l);
    free(i);
    return r;
}

static void t_canned_replies(void)
{
    struct pki p = { 0 };
    struct canned s = { 0 };
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    EVP_PKEY *skey = p256(), *rogue = p256(), *other = p256();
    X509 *scert, *renewed, *forged, *foreign, *inter2;
    struct stepca *c = NULL;
    struct stepca_result res = { 0 };
    char err[512], url[64], *root, *path, *big;
    size_t bigsz = STEPCA_MAX_REPLY + 100;
    int r;

    pki_make(&p, "api.test", "DNS:api.test", -60, 600);
    scert = mkcert(skey, p.inter, p.ikey, "127.0.0.1", "IP:127.0.0.1", 0, -60,
                   3600);
    renewed = mkcert(p.lkey, p.inter, p.ikey, "api.test", "DNS:api.test", 0,
                     -60, 600);
    /* same issuer name, signed by a key that is not the intermediate's */
    forged = mkcert(p.lkey, p.inter, rogue, "api.test", "DNS:api.test", 0, -60,
                    600);
    foreign = mkcert(other, p.inter, p.ikey, "api.test", "DNS:api.test", 0,
                     -60, 600);
    /* an intermediate of the same name that the root did not sign */
    inter2 = mkcert(rogue, p.root, rogue, "Test Intermediate", NULL, 1, -60,
                    600);
    big = malloc(bigsz + 1);
    memset(big, ' ', bigsz);
    big[0] = '{';
    big[bigsz - 1] = '}';
    big[bigsz] = '\0';
    {
        char *replies[] = {
            chain_reply(renewed, p.inter),
            chain_reply(forged, p.inter),
            chain_reply(foreign, p.inter),
            http_reply(401,
                       "{\"status\":401,\"message\":\"no\\u001b[1m way\"}"),
            http_reply(503, "{\"status\":503,\"message\":\"down\"}"),
            http_reply(404, "404 page not found\n"),
            http_reply(201, big),
            http_reply(201, "{\"crt\":\"not a cert\"}"),
            chain_reply(forged, inter2),
            chain_reply(renewed, p.inter),
        };
        s.replies = replies;
        s.n = sizeof(replies) / sizeof(replies[0]);
        s.ctx = SSL_CTX_new(TLS_server_method());
        CU_ASSERT_FATAL(SSL_CTX_use_certificate(s.ctx, scert) == 1 &&
                        SSL_CTX_use_PrivateKey(s.ctx, skey) == 1);
        SSL_CTX_add1_chain_cert(s.ctx, p.inter);
        s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CU_ASSERT_FATAL(bind(s.fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                        listen(s.fd, 4) == 0 &&
                        getsockname(s.fd, (struct sockaddr *)&a, &al) == 0);
        CU_ASSERT_FATAL(pthread_create(&s.th, NULL, canned_main, &s) == 0);
        root = pem_of(p.root);
        path = write_tmp(root);
        snprintf(url, sizeof(url), "https://127.0.0.1:%d", ntohs(a.sin_port));
        CU_ASSERT_FATAL(stepca_new(url, path, 5, &c) == 0);

#define RENEW()                                                              \
    stepca_renew_token(c, p.leaf, p.chain, p.lkey, &res, err, sizeof(err))
        /* 1: good (and the intermediate is now known good) */
        CU_ASSERT(RENEW() == 0);
        CU_ASSERT(res.chain_pem && strstr(res.chain_pem, "BEGIN CERTIFICATE"));
        stepca_result_done(&res);
        /* 2: the known intermediate's name, not its signature */
        CU_ASSERT(RENEW() == -EBADMSG);
        CU_ASSERT(strstr(err, "not signed by the intermediate") != NULL);
        /* 3: a certificate for another key */
        CU_ASSERT(RENEW() == -EBADMSG);
        CU_ASSERT(strstr(err, "the CA returned a certificate for another "
                             "key (subject 'CN = api.test'): not "
                             "delivered") != NULL);
        /* 4..8: error statuses, sizes, shapes */
        CU_ASSERT(RENEW() == -EACCES);
        CU_ASSERT_STRING_EQUAL(err, "renew (token): POST /1.0/renew: HTTP 401: "
                                    "no?[1m way");
        CU_ASSERT(RENEW() == -EREMOTEIO);
        CU_ASSERT_STRING_EQUAL(err, "renew (token): POST /1.0/renew: HTTP 503: "
                                    "down");
        CU_ASSERT(RENEW() == -ENOENT);
        CU_ASSERT_STRING_EQUAL(err, "renew (token): POST /1.0/renew: HTTP 404: "
                                    "'404 page not found '");
        CU_ASSERT(RENEW() == -EMSGSIZE);
        r = RENEW();
        CU_ASSERT(r == -EBADMSG);
        CU_ASSERT(strstr(err, "HTTP 201 but not a SignResponse") != NULL);
        /* 9: a new intermediate is verified in full */
        CU_ASSERT(RENEW() == -EBADMSG);
        CU_ASSERT(strstr(err, "does not verify to the root") != NULL);
        /* 10: and the good one is accepted again */
        CU_ASSERT(RENEW() == 0);
        stepca_result_done(&res);
#undef RENEW
        stepca_free(c);
        pthread_join(s.th, NULL);
        for (size_t i = 0; i < s.n; i++)
            free(replies[i]);
    }
    close(s.fd);
    SSL_CTX_free(s.ctx);
    unlink(path);
    free(path);
    free(root);
    free(big);
    X509_free(scert);
    X509_free(renewed);
    X509_free(forged);
    X509_free(foreign);
    X509_free(inter2);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(rogue);
    EVP_PKEY_free(other);
    pki_done(&p);
}

static void t_sign_args(void)
{
    struct pki p = { 0 };
    struct stepca *c = NULL;
    struct stepca_provisioner *prov = test_prov();
    struct stepca_result res = { 0 };
    static const char *const bad[] = { "ok.test", "bad name" };
    char err[512], *root, *path;

    pki_make(&p, "x", NULL, -60, 600);
    root = pem_of(p.root);
    path = write_tmp(root);
    CU_ASSERT_FATAL(stepca_new("https://127.0.0.1:1", path, 5, &c) == 0);
    CU_ASSERT(stepca_sign_jwk(c, prov, p.lkey, bad, 2, 60, &res, err,
                              sizeof(err)) == -EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "sign: name 2 is neither a DNS name nor an IP "
                                "address");
    CU_ASSERT(stepca_sign_jwk(c, prov, p.lkey, bad, 1, -1, &res, err,
                              sizeof(err)) == -EINVAL);
    CU_ASSERT(stepca_sign_jwk(c, prov, p.lkey, bad, 1, 60, &res, err,
                              sizeof(err)) == -ECONNREFUSED);
    CU_ASSERT(strncmp(err, "sign: POST /1.0/sign: ", 22) == 0);
    CU_ASSERT_PTR_NULL(res.chain_pem);
    stepca_free(c);
    unlink(path);
    free(path);
    free(root);
    stepca_provisioner_free(prov);
    pki_done(&p);
}

int cu_register(void)
{
    static const struct cu_test jwe[] = {
        { "vectors", t_jwe_vectors },
        { "wrong-password", t_jwe_wrong_password },
        { "p2c-bounds", t_jwe_p2c_bounds },
        { "tampered", t_jwe_tampered },
        { "malformed", t_jwe_malformed },
        { 0 },
    };
    static const struct cu_test jwk[] = {
        { "private", t_jwk_private },
        { "refused", t_jwk_refused },
        { "provisioner-file", t_provisioner_from_file },
        { 0 },
    };
    static const struct cu_test tokens[] = {
        { "renew-x5c", t_renew_token_shape },
        { "renew-no-cn", t_renew_token_no_cn },
        { "sign-ott", t_sign_token_shape },
        { 0 },
    };
    static const struct cu_test parsers[] = {
        { "sign-response-real", t_sign_response_real },
        { "sign-response-shapes", t_sign_response_shapes },
        { "error", t_error_parser },
        { "provisioners-real", t_provisioners_real },
        { "provisioners-shapes", t_provisioners_shapes },
        { 0 },
    };
    static const struct cu_test http[] = {
        { "names-csr", t_names_and_csr },
        { "body-sanitize-errno", t_body_and_sanitize },
        { 0 },
    };
    static const struct cu_test handle[] = {
        { "new-args", t_new_args },
        { "tls-refusal-class", t_tls_refusal_class },
        { "canned-replies", t_canned_replies },
        { "sign-args", t_sign_args },
        { 0 },
    };

    if (cu_add_suite("jwe", jwe) < 0 || cu_add_suite("jwk", jwk) < 0 ||
        cu_add_suite("tokens", tokens) < 0 ||
        cu_add_suite("parsers", parsers) < 0 ||
        cu_add_suite("http", http) < 0 || cu_add_suite("handle", handle) < 0)
        return -1;
    return 0;
}
