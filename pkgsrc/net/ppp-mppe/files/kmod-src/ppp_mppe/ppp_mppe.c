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
 * ppp_mppe: MPPE for NetBSD's if_ppp, as a kernel module (NetBSD 7 and later).
 *
 * if_ppp autoloads a module named "ppp_mppe" when pppd sets CCP option 18
 * (PPPIOCSCOMPRESS); this module registers a struct compressor for CI_MPPE
 * with ppp_register_compressor() and removes it with
 * ppp_unregister_compressor(), which refuses with EBUSY while a link holds
 * a reference.  The cipher work is done by the portable core (core/mppe.h)
 * on linear buffers; this file is the mbuf side of if_ppp's contract:
 *
 *  compress(state, &mret, m, slen, max_len): m is the whole frame with its
 *    4-byte PPP header (address, control, protocol), slen its length,
 *    max_len = MTU + PPP_HDRLEN.  A NULL *mret makes if_ppp send m as it is,
 *    so once MPPE runs this glue never leaves *mret NULL with plaintext in m:
 *    if it cannot build the encrypted frame it overwrites m's payload with
 *    zeros and marks it PPP_COMP with an invalid MPPE header (the peer drops
 *    it) rather than let the plaintext out.
 *  decompress(state, m, &dmp): m is a PPP_COMP frame with its 4-byte header;
 *    DECOMP_OK with *dmp set delivers the plaintext frame, DECOMP_OK with a
 *    NULL *dmp drops the packet quietly, DECOMP_ERROR makes pppd send a CCP
 *    Reset-Request (and stops decompression until the Reset-Ack, when
 *    decomp_reset is called), DECOMP_FATALERROR makes pppd take CCP down.
 *  comp_reset is called when we acknowledge the peer's Reset-Request: the
 *    next packet changes key and carries the flushed bit.
 *
 * Memory comes from kmem(9) (state, one linear scratch buffer per direction)
 * and mbufs; no floating point.
 */

#include <sys/cdefs.h>
#include <sys/param.h>
#include <sys/types.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/kmem.h>
#include <sys/mbuf.h>
#include <sys/module.h>
#include <sys/syslog.h>

#include <net/if.h>
#include <net/ppp_defs.h>
#define PACKETPTR	struct mbuf *	/* ppp-comp.h declares struct compressor for this */
#include <net/ppp-comp.h>
#include <net/if_ppp.h>

#include "mppe_os.h"
#include "mppe.h"

/*
 * What this glue relies on, checked at compile time against the tree it is
 * built with.  pppd hands the kernel the 6-byte option plus the 16-byte start
 * key; if_ppp truncates options at CCP_MAX_OPTION_LENGTH.
 */
CTASSERT(CCP_MAX_OPTION_LENGTH >= MPPE_OPTLEN);
CTASSERT(CI_MPPE == MPPE_CI);
CTASSERT(PPP_HDRLEN == 4);
CTASSERT(DECOMP_ERROR == 1 && DECOMP_FATALERROR == 2);

/*
 * struct compressor as this glue fills it: the protocol number, thirteen
 * function pointers, the registry's list entry and reference count.  A tree
 * whose struct differs must not get this module.
 */
#define PM_PTR		sizeof(void *)
#define PM_FN(i)	(PM_PTR * (1 + (i)))	/* the i-th function pointer */
CTASSERT(offsetof(struct compressor, compress_proto) == 0);
CTASSERT(offsetof(struct compressor, comp_alloc) == PM_FN(0));
CTASSERT(offsetof(struct compressor, compress) == PM_FN(4));
CTASSERT(offsetof(struct compressor, decomp_alloc) == PM_FN(6));
CTASSERT(offsetof(struct compressor, decompress) == PM_FN(10));
CTASSERT(offsetof(struct compressor, incomp) == PM_FN(11));
CTASSERT(offsetof(struct compressor, decomp_stat) == PM_FN(12));
CTASSERT(offsetof(struct compressor, comp_list) == PM_FN(13));
CTASSERT(offsetof(struct compressor, comp_refcnt) == PM_FN(15));
CTASSERT(sizeof(struct compressor) == PM_FN(16));

/* Largest frame either direction handles: PPP header + the largest MTU/MRU. */
#define MPPE_NB_BUFLEN	(PPP_HDRLEN + PPP_MAXMTU)
CTASSERT(PPP_MAXMRU <= PPP_MAXMTU);

struct mppe_nb {
	struct mppe_state core;
	struct mppe_opts opts;		/* from PPPIOCSCOMPRESS: bits + start key */
	int		dir;		/* MPPE_DIR_COMP or MPPE_DIR_DECOMP */
	int		unit;
	int		running;	/* mppe_init succeeded */
	u_char		*buf;		/* linear copy of one input frame */
};

static void *mppe_nb_comp_alloc(u_char *, int);
static void *mppe_nb_decomp_alloc(u_char *, int);
static void mppe_nb_free(void *);
static int mppe_nb_comp_init(void *, u_char *, int, int, int, int);
static int mppe_nb_decomp_init(void *, u_char *, int, int, int, int, int);
static void mppe_nb_comp_reset(void *);
static void mppe_nb_decomp_reset(void *);
static int mppe_nb_compress(void *, struct mbuf **, struct mbuf *, int, int);
static int mppe_nb_decompress(void *, struct mbuf *, struct mbuf **);
static void mppe_nb_incomp(void *, struct mbuf *);
static void mppe_nb_stat(void *, struct compstat *);

static struct compressor ppp_mppe[] = {
	{
		.compress_proto = CI_MPPE,
		.comp_alloc = mppe_nb_comp_alloc,
		.comp_free = mppe_nb_free,
		.comp_init = mppe_nb_comp_init,
		.comp_reset = mppe_nb_comp_reset,
		.compress = mppe_nb_compress,
		.comp_stat = mppe_nb_stat,
		.decomp_alloc = mppe_nb_decomp_alloc,
		.decomp_free = mppe_nb_free,
		.decomp_init = mppe_nb_decomp_init,
		.decomp_reset = mppe_nb_decomp_reset,
		.decompress = mppe_nb_decompress,
		.incomp = mppe_nb_incomp,
		.decomp_stat = mppe_nb_stat,
	},
};

void
mppe_os_log(int unit, const char *msg)
{

	log(LOG_INFO, "ppp%d: %s\n", unit, msg);
}

static void *
mppe_nb_alloc(u_char *options, int opt_len, int dir)
{
	struct mppe_nb *st;
	struct mppe_opts opts;

	if (opt_len < 2 || options[0] != CI_MPPE)
		return NULL;
	if (mppe_parse_opts(options, (mppe_size)opt_len, &opts) != MPPE_OK)
		return NULL;
	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->buf = kmem_alloc(MPPE_NB_BUFLEN, KM_SLEEP);
	st->opts = opts;
	st->dir = dir;
	explicit_memset(&opts, 0, sizeof(opts));
	return st;
}

static void *
mppe_nb_comp_alloc(u_char *options, int opt_len)
{

	return mppe_nb_alloc(options, opt_len, MPPE_DIR_COMP);
}

static void *
mppe_nb_decomp_alloc(u_char *options, int opt_len)
{

	return mppe_nb_alloc(options, opt_len, MPPE_DIR_DECOMP);
}

static void
mppe_nb_free(void *arg)
{
	struct mppe_nb *st = arg;

	mppe_wipe(&st->core);
	explicit_memset(st->buf, 0, MPPE_NB_BUFLEN);
	kmem_free(st->buf, MPPE_NB_BUFLEN);
	explicit_memset(st, 0, sizeof(*st));
	kmem_free(st, sizeof(*st));
}

/*
 * comp_init/decomp_init get the option of the CCP Configure-Ack (type,
 * length, four bits bytes: no key); the key came with the ioctl.  Returns
 * nonzero when MPPE may run, as if_ppp expects.
 */
static int
mppe_nb_init(struct mppe_nb *st, u_char *options, int opt_len, int unit, int debug)
{

	st->running = 0;
	st->unit = unit;
	if (opt_len < MPPE_CILEN || options[0] != CI_MPPE || options[1] != MPPE_CILEN)
		return 0;
	if (mppe_init(&st->core, &st->opts, st->dir, unit, debug) != MPPE_OK)
		return 0;
	st->running = 1;
	return 1;
}

static int
mppe_nb_comp_init(void *arg, u_char *options, int opt_len, int unit, int hdrlen, int debug)
{

	(void)hdrlen;
	return mppe_nb_init(arg, options, opt_len, unit, debug);
}

static int
mppe_nb_decomp_init(void *arg, u_char *options, int opt_len, int unit, int hdrlen, int mru,
    int debug)
{

	(void)hdrlen;
	(void)mru;
	return mppe_nb_init(arg, options, opt_len, unit, debug);
}

static void
mppe_nb_comp_reset(void *arg)
{
	struct mppe_nb *st = arg;

	if (st->running)
		mppe_comp_reset(&st->core);
}

static void
mppe_nb_decomp_reset(void *arg)
{
	struct mppe_nb *st = arg;

	if (st->running)
		mppe_decomp_reset(&st->core);
}

/* A packet-header mbuf with room for len contiguous bytes, or NULL. */
static struct mbuf *
mppe_nb_getbuf(int len)
{
	struct mbuf *m;

	m = m_gethdr(M_DONTWAIT, MT_DATA);
	if (m == NULL)
		return NULL;
	if (len > (int)MHLEN) {
		if (len <= MCLBYTES)
			MCLGET(m, M_DONTWAIT);
		else
			MEXTMALLOC(m, len, M_DONTWAIT);
		if ((m->m_flags & M_EXT) == 0) {
			m_freem(m);
			return NULL;
		}
	}
	m->m_len = m->m_pkthdr.len = len;
	return m;
}

/*
 * Fail closed: the frame if_ppp would send as it is (NULL *mret) loses its
 * payload and says PPP_COMP with a header no peer accepts (no D bit).
 */
static void
mppe_nb_scrub(struct mbuf *m)
{
	struct mbuf *n;
	int off = 0;

	for (n = m; n != NULL; n = n->m_next) {
		u_char *p = mtod(n, u_char *);
		int i;

		for (i = 0; i < n->m_len; i++, off++) {
			if (off == 2)
				p[i] = PPP_COMP >> 8;
			else if (off == 3)
				p[i] = PPP_COMP & 0xff;
			else if (off >= PPP_HDRLEN)
				p[i] = 0;
		}
	}
}

static int
mppe_nb_compress(void *arg, struct mbuf **mret, struct mbuf *mp, int slen, int max_len)
{
	struct mppe_nb *st = arg;
	struct mbuf *m;
	u_char *out;
	mppe_size olen;
	int ilen;

	*mret = NULL;
	if (!st->running)
		return 0;
	/* the core encrypts protocol + payload: the frame after address/control */
	ilen = slen - 2;
	if (ilen < 2 || ilen > MPPE_NB_BUFLEN) {
		mppe_nb_scrub(mp);
		return 0;
	}
	if (slen + MPPE_OVHD > max_len && (st->core.debug))
		log(LOG_DEBUG, "ppp%d: mppe: %d-byte frame exceeds %d after encryption\n",
		    st->unit, slen, max_len);
	m = mppe_nb_getbuf(slen + MPPE_OVHD);
	if (m == NULL) {
		mppe_nb_scrub(mp);
		return 0;
	}
	m_copydata(mp, 2, ilen, st->buf);
	out = mtod(m, u_char *);
	if (mppe_compress(&st->core, st->buf, (mppe_size)ilen, out + PPP_HDRLEN,
	    (mppe_size)(m->m_len - PPP_HDRLEN), &olen) != MPPE_OK) {
		m_freem(m);
		mppe_nb_scrub(mp);
		return 0;
	}
	out[0] = PPP_ALLSTATIONS;
	out[1] = PPP_UI;
	out[2] = PPP_COMP >> 8;
	out[3] = PPP_COMP & 0xff;
	m->m_len = m->m_pkthdr.len = PPP_HDRLEN + (int)olen;
	*mret = m;
	return m->m_len;
}

static int
mppe_nb_decompress(void *arg, struct mbuf *mp, struct mbuf **dmpp)
{
	struct mppe_nb *st = arg;
	struct mbuf *m, *n;
	u_char *out;
	mppe_size olen;
	int ilen, rc;

	*dmpp = NULL;
	if (!st->running)
		return DECOMP_FATALERROR;
	ilen = -PPP_HDRLEN;
	for (n = mp; n != NULL; n = n->m_next)
		ilen += n->m_len;
	if (ilen < MPPE_HDRLEN + MPPE_MIN_CIPHER || ilen > MPPE_NB_BUFLEN)
		return DECOMP_ERROR;
	/* allocate before the core runs: on failure its state is unchanged */
	m = mppe_nb_getbuf(2 + MPPE_DECOMP_MAX(ilen));
	if (m == NULL)
		return DECOMP_OK;	/* dropped; a stateful peer's next packet shows the gap */
	m_copydata(mp, PPP_HDRLEN, ilen, st->buf);
	out = mtod(m, u_char *);
	rc = mppe_decompress(&st->core, st->buf, (mppe_size)ilen, out + 2,
	    (mppe_size)(m->m_len - 2), &olen);
	switch (rc) {
	case MPPE_OK:
		out[0] = PPP_ALLSTATIONS;
		out[1] = PPP_UI;
		m->m_len = m->m_pkthdr.len = 2 + (int)olen;
		*dmpp = m;
		return DECOMP_OK;
	case MPPE_E_DROP:
		m_freem(m);
		return DECOMP_OK;
	case MPPE_E_FATAL:
		m_freem(m);
		return DECOMP_FATALERROR;
	default:	/* MPPE_E_RESET, MPPE_E_BADPKT, ... */
		m_freem(m);
		return DECOMP_ERROR;
	}
}

static void
mppe_nb_incomp(void *arg, struct mbuf *mp)
{
	struct mppe_nb *st = arg;
	struct mbuf *n;
	int len = 0;

	if (!st->running)
		return;
	for (n = mp; n != NULL; n = n->m_next)
		len += n->m_len;
	mppe_incomp(&st->core, NULL, (mppe_size)len);
}

static void
mppe_nb_stat(void *arg, struct compstat *cs)
{
	struct mppe_nb *st = arg;
	struct mppe_stats s;

	mppe_stats(&st->core, &s);
	cs->unc_bytes = s.unc_bytes;
	cs->unc_packets = s.unc_packets;
	cs->comp_bytes = s.comp_bytes;
	cs->comp_packets = s.comp_packets;
	cs->inc_bytes = s.inc_bytes;
	cs->inc_packets = s.inc_packets;
	/* ratio << 8 in integers, as the other compressors report it */
	cs->ratio = s.comp_bytes == 0 ? 0 :
	    (u_int)(((uint64_t)s.unc_bytes << 8) / s.comp_bytes);
}

MODULE(MODULE_CLASS_MISC, ppp_mppe, "if_ppp");

static int
ppp_mppe_modcmd(modcmd_t cmd, void *arg)
{

	(void)arg;
	switch (cmd) {
	case MODULE_CMD_INIT:
		return ppp_register_compressor(ppp_mppe, __arraycount(ppp_mppe));
	case MODULE_CMD_FINI:
		/* EBUSY while a link holds a reference to the compressor */
		return ppp_unregister_compressor(ppp_mppe, __arraycount(ppp_mppe));
	case MODULE_CMD_STAT:
		return 0;
	default:
		return ENOTTY;
	}
}
