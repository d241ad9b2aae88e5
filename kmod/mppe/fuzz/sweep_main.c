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
 * Deterministic sweep without libFuzzer: every input length 0..65535 once
 * through the harness's one-frame path, built with
 * -fsanitize=address,undefined (the program path is libFuzzer's).  Contents
 * are a flushed, encrypted header (so the whole length is decrypted) followed
 * by a byte pattern; lengths are taken in order so a report names the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void mppe_fuzz_one_frame(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
	static uint8_t buf[65536];
	size_t len, i, last = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 65535;
	uint8_t *in;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	buf[0] = 0x90;
	buf[1] = 0x00;
	for (len = 0; len <= last && len < sizeof(buf); len++) {
		in = malloc(len ? len : 1);
		if (in == NULL)
			return 2;
		for (i = 0; i < len; i++)
			in[i] = buf[i];
		mppe_fuzz_one_frame(in, len);
		free(in);
	}
	printf("sweep: lengths 0..%lu done\n", (unsigned long)(len - 1));
	return 0;
}
