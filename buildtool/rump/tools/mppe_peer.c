/*
 * mppe_peer: our portable MPPE core (kmod/mppe/core) built for Linux user space, as the rump lane's
 * "Linux side" peer. One compressor and one decompressor state, driven one command per line on stdin:
 *
 *   init comp|decomp HEX   mppe_parse_opts + mppe_init with the 22-byte CCP option + start key
 *   comp HEX               mppe_compress(protocol + payload)    -> "@out HEX" (MPPE header + ciphertext)
 *   decomp HEX             mppe_decompress(header + ciphertext) -> "@out HEX" (protocol + payload)
 *   compreset / decompreset   mppe_comp_reset / mppe_decomp_reset
 * Errors reply "@rc N" with the core's return code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mppe.h"

#define MAXPKT 70000

static struct mppe_state comp_st, decomp_st;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static long unhex(const char *s, mppe_u8 *buf, size_t cap)
{
    size_t n = 0;
    while (s && s[0] && s[1] && s[0] != '\n') {
        int hi = hexval(s[0]), lo = hexval(s[1]);
        if (hi < 0 || lo < 0 || n >= cap)
            return -1;
        buf[n++] = (mppe_u8)(hi << 4 | lo);
        s += 2;
    }
    return (long)n;
}

static void out_hex(const mppe_u8 *p, mppe_size n)
{
    mppe_size i;
    fputs("@out ", stdout);
    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar('\n');
}

static void do_init(const char *dir, const char *hex)
{
    static mppe_u8 opt[256];
    struct mppe_opts opts;
    long n = unhex(hex, opt, sizeof opt);
    int d = strcmp(dir, "comp") == 0 ? MPPE_DIR_COMP : MPPE_DIR_DECOMP;
    int rc = n < 0 ? MPPE_E_INVAL : mppe_parse_opts(opt, (mppe_size)n, &opts);
    if (rc == MPPE_OK)
        rc = mppe_init(d == MPPE_DIR_COMP ? &comp_st : &decomp_st, &opts, d, 0, 0);
    printf("@rc %d\n", rc);
}

static void do_packet(int compress, const char *hex)
{
    static mppe_u8 in[MAXPKT], out[MAXPKT + 16];
    mppe_size olen = 0;
    long n = unhex(hex, in, sizeof in);
    int rc;
    if (n < 0) {
        printf("@rc %d\n", MPPE_E_INVAL);
        return;
    }
    rc = compress ? mppe_compress(&comp_st, in, (mppe_size)n, out, sizeof out, &olen)
                  : mppe_decompress(&decomp_st, in, (mppe_size)n, out, sizeof out, &olen);
    if (rc == MPPE_OK)
        out_hex(out, olen);
    else
        printf("@rc %d\n", rc);
}

int main(void)
{
    static char line[2 * MAXPKT + 64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = '\0';
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "init") == 0 && arg) {
            char *hex = strchr(arg, ' ');
            if (hex)
                *hex++ = '\0';
            do_init(arg, hex ? hex : "");
        } else if (strcmp(line, "comp") == 0) {
            do_packet(1, arg);
        } else if (strcmp(line, "decomp") == 0) {
            do_packet(0, arg);
        } else if (strcmp(line, "compreset") == 0) {
            mppe_comp_reset(&comp_st);
            printf("@rc 0\n");
        } else if (strcmp(line, "decompreset") == 0) {
            mppe_decomp_reset(&decomp_st);
            printf("@rc 0\n");
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            printf("@error unknown command %s\n", line);
        }
    }
    return 0;
}
