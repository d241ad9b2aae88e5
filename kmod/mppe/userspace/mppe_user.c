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
 * Sizes for userspace callers of the core (ctypes in the tests and benchmark),
 * which cannot read sizeof from the header.
 */
#include "mppe.h"

mppe_size mppe_user_sizeof_state(void);
mppe_size mppe_user_sizeof_opts(void);
mppe_size mppe_user_sizeof_stats(void);
mppe_size mppe_user_sizeof_rc4(void);
mppe_size mppe_user_sizeof_sha1(void);

mppe_size mppe_user_sizeof_state(void) { return sizeof(struct mppe_state); }
mppe_size mppe_user_sizeof_opts(void) { return sizeof(struct mppe_opts); }
mppe_size mppe_user_sizeof_stats(void) { return sizeof(struct mppe_stats); }
mppe_size mppe_user_sizeof_rc4(void) { return sizeof(struct mppe_rc4); }
mppe_size mppe_user_sizeof_sha1(void) { return sizeof(struct mppe_sha1); }
