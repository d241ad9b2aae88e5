/*-
 * SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
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
 * ppp_mppe: the Linux glue of the portable MPPE core (kmod/mppe/core).
 *
 * Registers compressor CI_MPPE (18) with ppp_generic under the module name ppp_mppe and the alias
 * ppp-compress-18, exactly as Debian's stock module does, so pppd and the kernel's autoloading need
 * nothing new. Written from the interface in include/linux/ppp-comp.h and the way ppp_generic.c
 * calls it (Linux 6.1):
 *
 *  - comp_alloc/decomp_alloc get what pppd passed with PPPIOCSCOMPRESS: the CCP option (18, 6, four
 *    bytes of supported bits) followed by the 16-byte start key. Process context, may sleep.
 *  - comp_init/decomp_init get the option list of the CCP Configure-Ack (no key) when CCP comes up;
 *    they return 1 on success, 0 on failure.
 *  - compress(rptr, obuf, isize, osize): rptr points at the address/control bytes, then the 2-byte
 *    protocol and the payload (isize counts all of them). The result is ff 03 00 fd + MPPE header +
 *    ciphertext, its length returned; -1 drops the packet (MPPE never sends in clear), 0 would mean
 *    "send uncompressed" and is never used once MPPE runs. osize is mtu + comp_extra + 4.
 *  - decompress(ibuf, isize, obuf, osize): ibuf[0..1] are headroom (address/control already gone),
 *    ibuf[2..3] the protocol 0x00fd, then the MPPE header and ciphertext. The result is 2 bytes of
 *    address/control (ppp_generic pulls them off), the 2-byte protocol and the payload.
 *    DECOMP_ERROR makes ppp_generic hand the frame to pppd, which sends a CCP Reset-Request and
 *    stops decompression until the Reset-Ack (decomp_reset); DECOMP_FATALERROR makes pppd take the
 *    link down. osize is mru + PPP_HDRLEN + 1 (room for an expanded 1-byte protocol field).
 *  - comp_reset runs when our pppd sends a Reset-Ack (the peer asked for a reset), decomp_reset
 *    when one arrives. ppp_generic holds the transmit (compress side) or receive (decompress side)
 *    lock around every call, so one state is never used by two threads at once.
 *
 * Keys, RC4 and SHA-1 come from the core; nothing here uses the kernel's crypto.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/atomic.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/printk.h>
#include <linux/ppp_defs.h>
#include <linux/ppp-comp.h>

#include "mppe.h"

#define MPPE_LINUX_IMPLEMENTATION "buildtool kmod/mppe: portable core + Linux glue (" MPPE_CORE_VERSION ")"

/* One direction of one unit: the core's state plus what the glue needs to remember. */
struct mppe_linux {
	struct mppe_state core;
	struct mppe_opts opts;	/* parsed at allocation: the key comes only then */
	int dir;
};

/*
 * States come from a cache of their own, named in /proc/slabinfo, so a test can count the live ones
 * (a leak shows there). The constructor keeps SLUB from merging it with another cache of that size.
 */
#define MPPE_LINUX_CACHE "ppp_mppe_state"
static struct kmem_cache *mppe_linux_cache;

/*
 * States allocated and not yet freed, read as /sys/module/ppp_mppe/parameters/live_states: once every
 * unit has closed it must be 0. Exact, unlike the slab's active count (SLUB counts the objects of the
 * per-CPU slabs as active), so the VM scenarios check this one for leaks.
 */
static atomic_t mppe_linux_live = ATOMIC_INIT(0);

static int mppe_linux_live_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%d\n", atomic_read(&mppe_linux_live));
}

static const struct kernel_param_ops mppe_linux_live_ops = {
	.get = mppe_linux_live_get,
};
module_param_cb(live_states, &mppe_linux_live_ops, NULL, 0444);
MODULE_PARM_DESC(live_states, "MPPE states allocated and not yet freed (read-only)");

static void mppe_linux_ctor(void *obj)
{
	memset(obj, 0, sizeof(struct mppe_linux));
}

void mppe_os_log(int unit, const char *msg)
{
	printk_ratelimited(KERN_DEBUG "ppp_mppe[%d]: %s\n", unit, msg);
}

static void *mppe_linux_alloc(unsigned char *options, int opt_len, int dir)
{
	struct mppe_linux *st;
	struct mppe_opts opts;

	if (opt_len < 0 || mppe_parse_opts(options, (mppe_size)opt_len, &opts) != MPPE_OK)
		return NULL;	/* ppp_generic turns this into ENOBUFS */
	st = kmem_cache_alloc(mppe_linux_cache, GFP_KERNEL);	/* not _zalloc: SLUB warns with a ctor */
	if (!st)
		return NULL;
	memset(st, 0, sizeof(*st));
	st->opts = opts;
	st->dir = dir;
	memzero_explicit(&opts, sizeof(opts));
	atomic_inc(&mppe_linux_live);
	return st;
}

static void *mppe_linux_comp_alloc(unsigned char *options, int opt_len)
{
	return mppe_linux_alloc(options, opt_len, MPPE_DIR_COMP);
}

static void *mppe_linux_decomp_alloc(unsigned char *options, int opt_len)
{
	return mppe_linux_alloc(options, opt_len, MPPE_DIR_DECOMP);
}

static void mppe_linux_free(void *arg)
{
	struct mppe_linux *st = arg;

	if (!st)
		return;
	mppe_wipe(&st->core);
	memzero_explicit(st, sizeof(*st));
	kmem_cache_free(mppe_linux_cache, st);
	atomic_dec(&mppe_linux_live);
}

/*
 * The Configure-Ack's option must be MPPE and agree with what the key was handed over for: the
 * mode and the key length decide how the key is used, so a mismatch would only produce garbage.
 */
static int mppe_linux_init(struct mppe_linux *st, unsigned char *options, int opt_len, int unit, int debug)
{
	int stateless, keybits;

	if (!st || opt_len < MPPE_CILEN || options[0] != MPPE_CI || options[1] != MPPE_CILEN)
		return 0;
	stateless = (options[2] & MPPE_OPT0_H) != 0;
	keybits = (options[5] & MPPE_OPT3_S) ? 128 : (options[5] & MPPE_OPT3_M) ? 56 :
		(options[5] & MPPE_OPT3_L) ? 40 : 0;
	if (stateless != st->opts.stateless || keybits != st->opts.keybits) {
		printk(KERN_INFO "ppp_mppe[%d]: Configure-Ack asks for %s %d-bit MPPE, the key was given for "
		       "%s %d-bit\n", unit, stateless ? "stateless" : "stateful", keybits,
		       st->opts.stateless ? "stateless" : "stateful", st->opts.keybits);
		return 0;
	}
	return mppe_init(&st->core, &st->opts, st->dir, unit, debug) == MPPE_OK;
}

static int mppe_linux_comp_init(void *arg, unsigned char *options, int opt_len, int unit, int hdrlen,
				int debug)
{
	return mppe_linux_init(arg, options, opt_len, unit, debug);
}

static int mppe_linux_decomp_init(void *arg, unsigned char *options, int opt_len, int unit, int hdrlen,
				  int mru, int debug)
{
	return mppe_linux_init(arg, options, opt_len, unit, debug);
}

static void mppe_linux_comp_reset(void *arg)
{
	struct mppe_linux *st = arg;

	mppe_comp_reset(&st->core);
}

static void mppe_linux_decomp_reset(void *arg)
{
	struct mppe_linux *st = arg;

	mppe_decomp_reset(&st->core);
}

static int mppe_linux_compress(void *arg, unsigned char *rptr, unsigned char *obuf, int isize, int osize)
{
	struct mppe_linux *st = arg;
	mppe_size olen = 0;
	int rc;

	if (isize < PPP_HDRLEN || osize < PPP_HDRLEN)
		return -1;
	rc = mppe_compress(&st->core, rptr + 2, (mppe_size)(isize - 2), obuf + PPP_HDRLEN,
			   (mppe_size)(osize - PPP_HDRLEN), &olen);
	if (rc != MPPE_OK) {
		printk_ratelimited(KERN_INFO "ppp_mppe[%d]: dropping a %d-byte packet that cannot be "
				   "encrypted (core error %d)\n", st->core.unit, isize, rc);
		return -1;
	}
	obuf[0] = PPP_ALLSTATIONS;
	obuf[1] = PPP_UI;
	obuf[2] = PPP_COMP >> 8;
	obuf[3] = PPP_COMP & 0xff;
	return (int)olen + PPP_HDRLEN;
}

static int mppe_linux_decompress(void *arg, unsigned char *ibuf, int isize, unsigned char *obuf, int osize)
{
	struct mppe_linux *st = arg;
	mppe_size olen = 0;
	int rc;

	if (isize < PPP_HDRLEN + MPPE_HDRLEN || osize < 2)
		return DECOMP_ERROR;
	rc = mppe_decompress(&st->core, ibuf + PPP_HDRLEN, (mppe_size)(isize - PPP_HDRLEN), obuf + 2,
			     (mppe_size)(osize - 2), &olen);
	switch (rc) {
	case MPPE_OK:
		obuf[0] = PPP_ALLSTATIONS;
		obuf[1] = PPP_UI;
		return (int)olen + 2;
	case MPPE_E_FATAL:
		return DECOMP_FATALERROR;
	default:
		/* MPPE_E_RESET, _DROP, _BADPKT, _NOSPACE: Linux has no "drop silently"; pppd decides */
		return DECOMP_ERROR;
	}
}

static void mppe_linux_incomp(void *arg, unsigned char *ibuf, int icnt)
{
	struct mppe_linux *st = arg;

	if (icnt > 2)
		mppe_incomp(&st->core, ibuf + 2, (mppe_size)(icnt - 2));
}

static void mppe_linux_stat(void *arg, struct compstat *stats)
{
	struct mppe_linux *st = arg;
	struct mppe_stats s;

	mppe_stats(&st->core, &s);
	stats->unc_bytes = s.unc_bytes;
	stats->unc_packets = s.unc_packets;
	stats->comp_bytes = s.comp_bytes;
	stats->comp_packets = s.comp_packets;
	stats->inc_bytes = s.inc_bytes;
	stats->inc_packets = s.inc_packets;
	stats->in_count = s.unc_bytes;
	stats->bytes_out = s.comp_bytes;
}

static struct compressor mppe_linux_compressor = {
	.compress_proto	= MPPE_CI,
	.comp_alloc	= mppe_linux_comp_alloc,
	.comp_free	= mppe_linux_free,
	.comp_init	= mppe_linux_comp_init,
	.comp_reset	= mppe_linux_comp_reset,
	.compress	= mppe_linux_compress,
	.comp_stat	= mppe_linux_stat,
	.decomp_alloc	= mppe_linux_decomp_alloc,
	.decomp_free	= mppe_linux_free,
	.decomp_init	= mppe_linux_decomp_init,
	.decomp_reset	= mppe_linux_decomp_reset,
	.decompress	= mppe_linux_decompress,
	.incomp		= mppe_linux_incomp,
	.decomp_stat	= mppe_linux_stat,
	.owner		= THIS_MODULE,
	.comp_extra	= MPPE_OVHD,
};

static int __init mppe_linux_module_init(void)
{
	int err;

	mppe_linux_cache = kmem_cache_create(MPPE_LINUX_CACHE, sizeof(struct mppe_linux), 0, 0,
					     mppe_linux_ctor);
	if (!mppe_linux_cache)
		return -ENOMEM;
	err = ppp_register_compressor(&mppe_linux_compressor);
	if (err) {
		printk(KERN_INFO "ppp_mppe: registering compressor %d failed (%d): is another ppp_mppe "
		       "loaded?\n", MPPE_CI, err);
		kmem_cache_destroy(mppe_linux_cache);
		return err;
	}
	printk(KERN_INFO "ppp_mppe: %s\n", MPPE_LINUX_IMPLEMENTATION);
	return 0;
}

static void __exit mppe_linux_module_exit(void)
{
	ppp_unregister_compressor(&mppe_linux_compressor);
	kmem_cache_destroy(mppe_linux_cache);
}

module_init(mppe_linux_module_init);
module_exit(mppe_linux_module_exit);

MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("MPPE (RFC 3078/3079) for ppp_generic: buildtool's portable core with Linux glue");
MODULE_ALIAS("ppp-compress-" __stringify(MPPE_CI));
MODULE_VERSION("1.0");	/* also gives /sys/module/ppp_mppe/srcversion, as Debian's module has */
/* what tells this module from Debian's stock ppp_mppe (srcversion cannot): read by the VM scenarios */
MODULE_INFO(implementation, MPPE_LINUX_IMPLEMENTATION);
