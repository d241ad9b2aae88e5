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
 * mppe_os.h for the NetBSD 1.4.1 LKM: the core's types and memory functions
 * on a kernel of 1999 (bcopy/bzero/bcmp in libkern; memset is our own).
 * C89, as gcc 2.91 compiles it.
 */
#ifndef MPPE_NETBSD14_MPPE_OS_H
#define MPPE_NETBSD14_MPPE_OS_H

#include <sys/types.h>
#include <sys/systm.h>

typedef u_int8_t	mppe_u8;
typedef u_int16_t	mppe_u16;
typedef u_int32_t	mppe_u32;
typedef size_t		mppe_size;

#define mppe_os_memcpy(d, s, n)	bcopy((s), (d), (n))
#define mppe_os_memset(d, c, n)	mppe_lkm_memset((d), (c), (n))
#define mppe_os_memcmp(a, b, n)	bcmp((a), (b), (n))	/* the core only tests for equality */

void *mppe_lkm_memset(void *, int, size_t);
void mppe_os_log(int unit, const char *msg);

#endif /* MPPE_NETBSD14_MPPE_OS_H */
