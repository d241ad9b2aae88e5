/*-
 * Copyright (c) 2026 The buildtool project contributors.
 * All rights reserved.
 *
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the following conditions
 * are met:
 * 1. Redistributions of source code must retain the above copyright
 *    notice, this list of conditions and the following disclaimer.
 * 2. Redistributions in binary form must reproduce the above copyright
 *    notice, this list of conditions and the following disclaimer in the
 *    documentation and/or other materials provided with the distribution.
 *
 * THIS SOFTWARE IS PROVIDED BY THE AUTHOR AND CONTRIBUTORS ``AS IS'' AND
 * ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
 * IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
 * ARE DISCLAIMED.  IN NO EVENT SHALL THE AUTHOR OR CONTRIBUTORS BE LIABLE
 * FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
 * DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS
 * OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
 * HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT
 * LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
 * OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF
 * SUCH DAMAGE.
 */


/*
 * Throughput of the core against OpenSSL's libcrypto on this CPU, for
 * bench/mppe_bench.py: raw RC4 (core vs OpenSSL's assembler RC4), and whole
 * MPPE packets (mppe_compress, mppe_decompress) against the same per-packet
 * work done with libcrypto (RC4 + SHA-1 key changes).  Prints one line per
 * figure: "<name> <packet bytes> <MB/s>".  Figures only; nothing is asserted.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rc4.h>
#include <openssl/sha.h>

#include "mppe.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const mppe_u8 key[16] = {
	0x8b, 0x7c, 0xdc, 0x14, 0x9b, 0x99, 0x3a, 0x1b,
	0xa1, 0x18, 0xcb, 0x15, 0x3f, 0x56, 0xdc, 0xcb
};
static double budget = 0.5;	/* seconds per figure */

static void
report(const char *name, size_t size, double bytes, double secs)
{
	printf("%s %lu %.1f\n", name, (unsigned long)size, bytes / secs / 1e6);
	fflush(stdout);
}

/* Run `step` on packets of `size` until `budget` seconds pass; return MB/s via report. */
#define TIMED(name, size, step) do {					\
	double t0 = now(), t = 0, bytes = 0;				\
	long n;								\
	while ((t = now() - t0) < budget) {				\
		for (n = 0; n < 256; n++) { step; }			\
		bytes += 256.0 * (size);				\
	}								\
	report(name, size, bytes, t);					\
} while (0)

/* The MPPE stateless key change done with libcrypto: the ceiling for rekeying work. */
static void
ossl_change_key(unsigned char *session, size_t keylen)
{
	static const unsigned char pad1[40], pad2[40] = {
		0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
		0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
		0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
		0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2
	};
	SHA_CTX c;
	RC4_KEY k;
	unsigned char d[20];

	SHA1_Init(&c);
	SHA1_Update(&c, key, keylen);
	SHA1_Update(&c, pad1, 40);
	SHA1_Update(&c, session, keylen);
	SHA1_Update(&c, pad2, 40);
	SHA1_Final(d, &c);
	RC4_set_key(&k, (int)keylen, d);
	RC4(&k, keylen, d, session);
}

/*
 * Decompression needs genuine frames in order: encrypt a batch of BATCH frames
 * untimed, then time decrypting them with a receiver initialised for that
 * batch (one init per BATCH frames, included in the time).
 */
#define BATCH	256
static mppe_u8 frames[BATCH][1600];
static mppe_size flens[BATCH];

static void
decompress_figure(const struct mppe_opts *o, size_t size)
{
	static mppe_u8 in[1600], back[1600];
	struct mppe_state tx, rx;
	double t = 0, t0, bytes = 0;
	mppe_size blen;
	int n;

	memset(in, 0x21, sizeof(in));
	in[0] = 0;
	while (t < budget) {
		mppe_init(&tx, o, MPPE_DIR_COMP, 0, 0);
		for (n = 0; n < BATCH; n++)
			mppe_compress(&tx, in, size - 2, frames[n], sizeof(frames[n]), &flens[n]);
		t0 = now();
		mppe_init(&rx, o, MPPE_DIR_DECOMP, 0, 0);
		for (n = 0; n < BATCH; n++)
			if (mppe_decompress(&rx, frames[n], flens[n], back, sizeof(back), &blen) != MPPE_OK)
				abort();
		t += now() - t0;
		bytes += (double)BATCH * size;
	}
	report(o->stateless ? "mppe-decompress-stateless" : "mppe-decompress-stateful", size, bytes, t);
}

int
main(int argc, char **argv)
{
	static const size_t sizes[2] = { 1500, 64 };
	static mppe_u8 in[1600], out[1600];
	struct mppe_rc4 rc4;
	struct mppe_opts o;
	struct mppe_state tx;
	RC4_KEY ok;
	unsigned char session[16];
	mppe_size olen;
	size_t s, size;
	int stateless;

	if (argc > 1)
		budget = atof(argv[1]);
	memset(in, 0x21, sizeof(in));
	in[0] = 0;
	for (s = 0; s < 2; s++) {
		size = sizes[s];
		mppe_rc4_setkey(&rc4, key, 16);
		TIMED("rc4-core", size, mppe_rc4_crypt(&rc4, in, out, size));
		RC4_set_key(&ok, 16, key);
		TIMED("rc4-openssl", size, RC4(&ok, size, in, out));
		for (stateless = 0; stateless < 2; stateless++) {
			o.stateless = stateless;
			o.keybits = 128;
			memcpy(o.start_key, key, 16);
			mppe_init(&tx, &o, MPPE_DIR_COMP, 0, 0);
			TIMED(stateless ? "mppe-compress-stateless" : "mppe-compress-stateful", size,
			    mppe_compress(&tx, in, size - 2, out, sizeof(out), &olen));
			decompress_figure(&o, size);
		}
		memcpy(session, key, 16);
		RC4_set_key(&ok, 16, key);
		TIMED("openssl-stateless-equivalent", size,
		    (ossl_change_key(session, 16), RC4_set_key(&ok, 16, session), RC4(&ok, size, in, out)));
	}
	return 0;
}
