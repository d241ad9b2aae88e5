/*-
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Copyright (c) 2026 The buildtool authors.
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
 * THIS SOFTWARE IS PROVIDED BY THE AUTHORS ``AS IS'' AND ANY EXPRESS OR
 * IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES
 * OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED.
 * IN NO EVENT SHALL THE AUTHORS BE LIABLE FOR ANY DIRECT, INDIRECT,
 * INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT
 * NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
 * DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY
 * THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
 * (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF
 * THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
 */

/*
 * What the portable MPPE core (kmod/mppe/core) needs from the Linux kernel: fixed-width types, the
 * string functions and a log line. The core includes nothing else.
 */
#ifndef MPPE_OS_H
#define MPPE_OS_H

#include <linux/types.h>
#include <linux/string.h>

typedef u8 mppe_u8;
typedef u16 mppe_u16;
typedef u32 mppe_u32;
typedef size_t mppe_size;

#define mppe_os_memcpy(d, s, n) memcpy((d), (s), (n))
#define mppe_os_memset(d, c, n) memset((d), (c), (n))
#define mppe_os_memcmp(a, b, n) memcmp((a), (b), (n))

/* in mppe_linux.c: a rate-limited KERN_DEBUG line naming the ppp unit */
void mppe_os_log(int unit, const char *msg);

#endif /* MPPE_OS_H */
