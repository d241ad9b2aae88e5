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
 * The PPP rump component: NetBSD's if_ppp, its tty line discipline and the compressors if_ppp lists,
 * attached the way a kernel with `pseudo-device ppp` attaches them at boot.
 *
 * The 2016 if_ppp.c the rump kernel is built from is not yet a module (NetBSD-current's is, named
 * "if_ppp"). Our ppp_mppe module declares that it requires "if_ppp", as it must on a current kernel, so
 * this component also declares a module of that name; its init has nothing left to do because the
 * component attached ppp already. Without it the module framework would refuse ppp_mppe.
 */
#include <sys/cdefs.h>
#include <sys/param.h>
#include <sys/module.h>

#include <rump-sys/kern.h>

void pppattach(int);

RUMP_COMPONENT(RUMP_COMPONENT_NET_IF)
{
	pppattach(0);
}

MODULE(MODULE_CLASS_DRIVER, if_ppp, NULL);

static int
if_ppp_modcmd(modcmd_t cmd, void *arg)
{
	switch (cmd) {
	case MODULE_CMD_INIT:
		return 0;
	case MODULE_CMD_FINI:
		return EBUSY;	/* attached for the life of the rump kernel */
	default:
		return ENOTTY;
	}
}
