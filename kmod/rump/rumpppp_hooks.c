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
 * Kernel-side hooks the rump lane's driver calls (inside rump_schedule()): what a test needs to do in
 * the kernel that no system call offers. Names start with "rump" so that the rump build does not
 * rename them into the kernel's namespace.
 */
#include <sys/cdefs.h>
#include <sys/param.h>
#include <sys/module.h>
#include <sys/queue.h>
#include <sys/systm.h>

int rumpppp_reregister(const char *);

/*
 * Run module NAME's init a second time, as a second load of the same compressor would: the
 * compressor is already registered, so ppp_register_compressor must refuse it (EEXIST) and the
 * module must keep working. Returns the init's result, or ENOENT if no such module is loaded.
 */
int
rumpppp_reregister(const char *name)
{
	struct module *mod;
	int error = ENOENT;

	kernconfig_lock();
	TAILQ_FOREACH(mod, &module_list, mod_chain) {
		if (strcmp(mod->mod_info->mi_name, name) == 0) {
			error = (*mod->mod_info->mi_modcmd)(MODULE_CMD_INIT, NULL);
			break;
		}
	}
	kernconfig_unlock();
	return error;
}
