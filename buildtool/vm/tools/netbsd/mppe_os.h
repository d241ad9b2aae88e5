/*-
 * Copyright (c) 2026 The buildtool project contributors.
 * SPDX-License-Identifier: BSD-2-Clause (full text in kmod/mppe/core/mppe.h)
 */
/* mppe_os.h for the NetBSD test agent: no libc, so the agent supplies the memory functions. */
#ifndef BT_AGENT_MPPE_OS_H
#define BT_AGENT_MPPE_OS_H

typedef unsigned char		mppe_u8;
typedef unsigned short		mppe_u16;
typedef unsigned int		mppe_u32;
typedef unsigned long		mppe_size;

void *memcpy(void *, const void *, unsigned long);
void *memset(void *, int, unsigned long);
int memcmp(const void *, const void *, unsigned long);

#define mppe_os_memcpy(d, s, n)	memcpy((d), (s), (n))
#define mppe_os_memset(d, c, n)	memset((d), (c), (n))
#define mppe_os_memcmp(a, b, n)	memcmp((a), (b), (n))

void mppe_os_log(int unit, const char *msg);

#endif
