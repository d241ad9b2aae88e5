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

/* SHA-1 (FIPS 180-4) for RFC 3079 key derivation; only short messages are hashed. */
#include "mppe.h"

#define ROL(x, n)	(((x) << (n)) | ((x) >> (32 - (n))))

static mppe_u32
load_be32(const mppe_u8 *p)
{
	return ((mppe_u32)p[0] << 24) | ((mppe_u32)p[1] << 16) |
	    ((mppe_u32)p[2] << 8) | (mppe_u32)p[3];
}

static void
store_be32(mppe_u8 *p, mppe_u32 v)
{
	p[0] = (mppe_u8)(v >> 24);
	p[1] = (mppe_u8)(v >> 16);
	p[2] = (mppe_u8)(v >> 8);
	p[3] = (mppe_u8)v;
}

static void
sha1_block(mppe_u32 h[5], const mppe_u8 *blk)
{
	mppe_u32 w[16];
	mppe_u32 a, b, c, d, e, f, k, t;
	unsigned int i;

	for (i = 0; i < 16; i++)
		w[i] = load_be32(blk + 4 * i);
	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	for (i = 0; i < 80; i++) {
		if (i >= 16) {
			t = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
			w[i & 15] = ROL(t, 1);
		}
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999UL;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1UL;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdcUL;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6UL;
		}
		t = ROL(a, 5) + f + e + k + w[i & 15];
		e = d;
		d = c;
		c = ROL(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	mppe_os_memset(w, 0, sizeof(w));
}

void
mppe_sha1_init(struct mppe_sha1 *ctx)
{
	ctx->h[0] = 0x67452301UL;
	ctx->h[1] = 0xefcdab89UL;
	ctx->h[2] = 0x98badcfeUL;
	ctx->h[3] = 0x10325476UL;
	ctx->h[4] = 0xc3d2e1f0UL;
	ctx->nbytes_lo = 0;
	ctx->nbytes_hi = 0;
	ctx->buflen = 0;
}

void
mppe_sha1_update(struct mppe_sha1 *ctx, const mppe_u8 *data, mppe_size len)
{
	mppe_size take;
	mppe_u32 lo;

	while (len > 0) {
		take = 64 - ctx->buflen;
		if (take > len)
			take = len;
		mppe_os_memcpy(ctx->buf + ctx->buflen, data, take);
		ctx->buflen += (mppe_u32)take;
		data += take;
		len -= take;
		lo = ctx->nbytes_lo + (mppe_u32)take;
		if (lo < ctx->nbytes_lo)
			ctx->nbytes_hi++;
		ctx->nbytes_lo = lo;
		if (ctx->buflen == 64) {
			sha1_block(ctx->h, ctx->buf);
			ctx->buflen = 0;
		}
	}
}

void
mppe_sha1_final(struct mppe_sha1 *ctx, mppe_u8 digest[MPPE_SHA1_LEN])
{
	mppe_u8 len[8];
	unsigned int i;

	/* Bit length = byte length * 8, as a 64-bit big-endian number. */
	store_be32(len, (ctx->nbytes_hi << 3) | (ctx->nbytes_lo >> 29));
	store_be32(len + 4, ctx->nbytes_lo << 3);
	ctx->buf[ctx->buflen++] = 0x80;
	if (ctx->buflen > 56) {
		mppe_os_memset(ctx->buf + ctx->buflen, 0, 64 - ctx->buflen);
		sha1_block(ctx->h, ctx->buf);
		ctx->buflen = 0;
	}
	mppe_os_memset(ctx->buf + ctx->buflen, 0, 56 - ctx->buflen);
	mppe_os_memcpy(ctx->buf + 56, len, 8);
	sha1_block(ctx->h, ctx->buf);
	for (i = 0; i < 5; i++)
		store_be32(digest + 4 * i, ctx->h[i]);
	mppe_os_memset(ctx, 0, sizeof(*ctx));
}
