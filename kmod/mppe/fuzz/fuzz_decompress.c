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
 * libFuzzer harness for the core's receive path (built with
 * -fsanitize=fuzzer,address,undefined; the sanitizers are the oracle).
 *
 * Each input is used twice:
 *  1. as one frame, handed whole to mppe_decompress on a fresh state whose
 *     mode and key strength come from the input length, with exactly-sized
 *     heap buffers so any over-read or over-write is reported;
 *  2. as a little program driving a sender and a receiver: fuzzed frames,
 *     genuine frames (so decryption, catch-up and resync paths are reached),
 *     genuine frames lost, corrupted or replayed, Reset-Requests and
 *     unencrypted packets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mppe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void mppe_fuzz_one_frame(const uint8_t *data, size_t size);

#define MAX_CALLS	1024

static const mppe_u8 fuzz_key[MPPE_KEYLEN] = {
	0x8b, 0x7c, 0xdc, 0x14, 0x9b, 0x99, 0x3a, 0x1b,
	0xa1, 0x18, 0xcb, 0x15, 0x3f, 0x56, 0xdc, 0xcb
};

static void
make_opts(struct mppe_opts *o, unsigned int sel)
{
	static const int bits[3] = { 40, 56, 128 };

	o->keybits = bits[sel % 3];
	o->stateless = (sel / 3) % 2 == 0;
	memcpy(o->start_key, fuzz_key, MPPE_KEYLEN);
}

static void
check(int rc, size_t olen, size_t osize)
{
	if (rc == MPPE_OK && olen > osize)
		abort();
	if (rc > MPPE_OK || rc < MPPE_E_INVAL)
		abort();
}

/* Decompress from an exactly-sized copy into an exactly-sized output. */
static int
feed(struct mppe_state *rx, const uint8_t *frame, size_t len)
{
	mppe_u8 *in = malloc(len ? len : 1);
	size_t osize = len >= MPPE_HDRLEN ? MPPE_DECOMP_MAX(len) : 0;
	mppe_u8 *out = malloc(osize ? osize : 1);
	mppe_size olen = 0;
	int rc;

	if (in == NULL || out == NULL)
		abort();
	memcpy(in, frame, len);
	rc = mppe_decompress(rx, in, len, out, osize, &olen);
	check(rc, olen, osize);
	free(in);
	free(out);
	return rc;
}

void
mppe_fuzz_one_frame(const uint8_t *data, size_t size)
{
	struct mppe_opts o;
	struct mppe_state rx;

	make_opts(&o, (unsigned int)(size % 6));
	if (mppe_init(&rx, &o, MPPE_DIR_DECOMP, 0, 0) != MPPE_OK)
		abort();
	feed(&rx, data, size);
}

static void
program(const uint8_t *data, size_t size)
{
	struct mppe_opts o;
	struct mppe_state tx, rx;
	mppe_u8 plain[300], frame[302], last[302];
	mppe_size flen = 0, lastlen = 0;
	size_t pos = 1, n, k;
	unsigned int op, calls = 0;

	if (size == 0)
		return;
	make_opts(&o, data[0]);
	if (mppe_init(&tx, &o, MPPE_DIR_COMP, 0, 0) != MPPE_OK ||
	    mppe_init(&rx, &o, MPPE_DIR_DECOMP, 0, 0) != MPPE_OK)
		abort();
	/* A bounded number of core calls per input keeps every input fast. */
	while (pos < size && calls < MAX_CALLS) {
		op = data[pos++] & 7;
		n = pos < size ? data[pos++] : 0;
		switch (op) {
		case 0:	/* fuzzed frame of n bytes */
			if (n > size - pos)
				n = size - pos;
			feed(&rx, data + pos, n);
			calls++;
			pos += n;
			break;
		case 1:	/* genuine frame */
		case 6:	/* genuine frame, one byte corrupted */
		case 2:	/* n genuine frames lost */
			for (k = 0; k < (op == 2 ? n : 1) && calls < MAX_CALLS; k++, calls++) {
				plain[0] = 0x00;
				plain[1] = 0x21;
				memset(plain + 2, (int)k, sizeof(plain) - 2);
				if (mppe_compress(&tx, plain, 2 + n, frame, sizeof(frame), &flen) != MPPE_OK)
					abort();
			}
			if (op == 2)
				break;
			if (op == 6 && pos < size)
				frame[data[pos] % flen] ^= (mppe_u8)(data[pos] | 1);
			memcpy(last, frame, flen);
			lastlen = flen;
			feed(&rx, frame, flen);
			calls++;
			break;
		case 3:
			mppe_comp_reset(&tx);
			break;
		case 4:
			mppe_decomp_reset(&rx);
			break;
		case 5:
			mppe_incomp(&rx, data + pos, n > size - pos ? size - pos : n);
			break;
		default:	/* replay the last genuine frame */
			if (lastlen > 0)
				feed(&rx, last, lastlen);
			calls++;
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mppe_fuzz_one_frame(data, size);
	program(data, size);
	return 0;
}
