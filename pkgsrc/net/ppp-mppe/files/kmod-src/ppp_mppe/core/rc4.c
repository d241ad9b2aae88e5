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

/* RC4 (the cipher RFC 3078 prescribes) for the MPPE core. */
#include "mppe.h"

/*
 * The permutation is kept in 32-bit cells: byte-sized cells cost partial-register
 * stalls on current CPUs (this is also what OpenSSL's C RC4 does), and the
 * keystream loop is unrolled by four.
 */

void
mppe_rc4_setkey(struct mppe_rc4 *rc4, const mppe_u8 *key, mppe_size keylen)
{
	mppe_u32 *s = rc4->s;
	mppe_u32 j, t;
	mppe_size k;
	unsigned int i;

	for (i = 0; i < 256; i++)
		s[i] = i;
	rc4->i = 0;
	rc4->j = 0;
	if (keylen == 0)
		return;
	j = 0;
	k = 0;
	for (i = 0; i < 256; i++) {
		t = s[i];
		j = (j + t + key[k]) & 0xff;
		s[i] = s[j];
		s[j] = t;
		if (++k == keylen)
			k = 0;
	}
}

#define RC4_STEP(n) do {						\
	i = (i + 1) & 0xff;						\
	si = s[i];							\
	j = (j + si) & 0xff;						\
	sj = s[j];							\
	s[i] = sj;							\
	s[j] = si;							\
	out[n] = (mppe_u8)(in[n] ^ s[(si + sj) & 0xff]);		\
} while (0)

void
mppe_rc4_crypt(struct mppe_rc4 *rc4, const mppe_u8 *in, mppe_u8 *out, mppe_size len)
{
	mppe_u32 *s = rc4->s;
	mppe_u32 i = rc4->i, j = rc4->j, si, sj;

	for (; len >= 4; len -= 4, in += 4, out += 4) {
		RC4_STEP(0);
		RC4_STEP(1);
		RC4_STEP(2);
		RC4_STEP(3);
	}
	for (; len > 0; len--, in++, out++)
		RC4_STEP(0);
	rc4->i = i;
	rc4->j = j;
}
