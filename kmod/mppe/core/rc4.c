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

void
mppe_rc4_setkey(struct mppe_rc4 *rc4, const mppe_u8 *key, mppe_size keylen)
{
	mppe_u8 *s = rc4->s;
	mppe_u8 j, t;
	mppe_size k;
	unsigned int i;

	for (i = 0; i < 256; i++)
		s[i] = (mppe_u8)i;
	rc4->i = 0;
	rc4->j = 0;
	if (keylen == 0)
		return;
	j = 0;
	k = 0;
	for (i = 0; i < 256; i++) {
		t = s[i];
		j = (mppe_u8)(j + t + key[k]);
		s[i] = s[j];
		s[j] = t;
		if (++k == keylen)
			k = 0;
	}
}

void
mppe_rc4_crypt(struct mppe_rc4 *rc4, const mppe_u8 *in, mppe_u8 *out, mppe_size len)
{
	mppe_u8 *s = rc4->s;
	unsigned int i = rc4->i, j = rc4->j;
	unsigned int si, sj;
	mppe_size n;

	/* Indices kept in unsigned int and masked: cheaper than byte arithmetic on most CPUs. */
	for (n = 0; n < len; n++) {
		i = (i + 1) & 0xff;
		si = s[i];
		j = (j + si) & 0xff;
		sj = s[j];
		s[i] = (mppe_u8)sj;
		s[j] = (mppe_u8)si;
		out[n] = (mppe_u8)(in[n] ^ s[(si + sj) & 0xff]);
	}
	rc4->i = (mppe_u8)i;
	rc4->j = (mppe_u8)j;
}
