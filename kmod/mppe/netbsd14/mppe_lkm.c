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
 * mppe: MPPE for NetBSD 1.4.1's ppp(4), as an LKM (modload(8)).
 *
 * NetBSD 1.4's if_ppp finds compressors in the global, NULL-terminated
 * array ppp_compressors[8] (sys/net/if_ppp.c), whose spare slots were left
 * for loadable compressors.  On load this LKM puts its struct compressor for
 * CI_MPPE into the first free slot (keeping a NULL after it); on unload it
 * takes it out again, and refuses with EBUSY while any link still has MPPE
 * state allocated (this if_ppp keeps no reference count of its own).
 *
 * The mbuf contract is the one of the ppp-2.3 compressor interface, the same
 * as in the modern glue (../netbsd/ppp_mppe.c): compress() leaving *mret
 * NULL makes if_ppp send the frame as it is, so when encryption is impossible
 * the frame's payload is zeroed and marked PPP_COMP instead (fail closed);
 * decompress() returns DECOMP_OK with or without a frame, DECOMP_ERROR (a
 * CCP Reset-Request follows) or DECOMP_FATALERROR.  Frames are built in one
 * mbuf cluster (MCLBYTES), which bounds the MTU this LKM serves.
 *
 * The kernel's CCP_MAX_OPTION_LENGTH was 32 in 1.4.1; pppd 2.4 passes 22
 * bytes, which fit, but the profile still raises it to 64 as the historic
 * package did (see patch-net_ppp-comp.h).  C89 throughout, for gcc 2.91.
 */

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/errno.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/conf.h>
#include <sys/exec.h>
#include <sys/lkm.h>
#include <sys/syslog.h>

#include <net/ppp_defs.h>
#define PACKETPTR	struct mbuf *
#include <net/ppp-comp.h>

#include "mppe_os.h"
#include "mppe.h"

/* compile-time checks in C89: an array of negative size fails the build */
typedef char mppe_lkm_optlen_fits[(CCP_MAX_OPTION_LENGTH >= MPPE_OPTLEN) ? 1 : -1];
typedef char mppe_lkm_ci_matches[(CI_MPPE == MPPE_CI) ? 1 : -1];
typedef char mppe_lkm_hdrlen[(PPP_HDRLEN == 4) ? 1 : -1];

#define MPPE_LKM_NSLOTS	8	/* size of 1.4's ppp_compressors[] */
#define MPPE_LKM_BUFLEN	MCLBYTES

extern struct compressor *ppp_compressors[];

struct mppe_lkm {
	struct mppe_state core;
	struct mppe_opts opts;
	int		dir;
	int		unit;
	int		running;
	u_char		buf[MPPE_LKM_BUFLEN];	/* linear copy of one input frame */
};

static int mppe_lkm_states;	/* states allocated: unload refuses while nonzero */

static void *mppe_lkm_comp_alloc(u_char *, int);
static void *mppe_lkm_decomp_alloc(u_char *, int);
static void mppe_lkm_free(void *);
static int mppe_lkm_comp_init(void *, u_char *, int, int, int, int);
static int mppe_lkm_decomp_init(void *, u_char *, int, int, int, int, int);
static void mppe_lkm_comp_reset(void *);
static void mppe_lkm_decomp_reset(void *);
static int mppe_lkm_compress(void *, struct mbuf **, struct mbuf *, int, int);
static int mppe_lkm_decompress(void *, struct mbuf *, struct mbuf **);
static void mppe_lkm_incomp(void *, struct mbuf *);
static void mppe_lkm_stat(void *, struct compstat *);

/* positional initialisers: C89 has no designated ones */
static struct compressor ppp_mppe = {
	CI_MPPE,
	mppe_lkm_comp_alloc,
	mppe_lkm_free,
	mppe_lkm_comp_init,
	mppe_lkm_comp_reset,
	mppe_lkm_compress,
	mppe_lkm_stat,
	mppe_lkm_decomp_alloc,
	mppe_lkm_free,
	mppe_lkm_decomp_init,
	mppe_lkm_decomp_reset,
	mppe_lkm_decompress,
	mppe_lkm_incomp,
	mppe_lkm_stat
};

void *
mppe_lkm_memset(void *dst, int c, size_t n)
{
	u_char *p = dst;

	while (n-- > 0)
		*p++ = (u_char)c;
	return dst;
}

void
mppe_os_log(int unit, const char *msg)
{

	log(LOG_INFO, "ppp%d: %s\n", unit, msg);
}

static void *
mppe_lkm_alloc(u_char *options, int opt_len, int dir)
{
	struct mppe_lkm *st;
	struct mppe_opts opts;

	if (opt_len < 2 || options[0] != CI_MPPE)
		return NULL;
	if (mppe_parse_opts(options, (mppe_size)opt_len, &opts) != MPPE_OK)
		return NULL;
	st = (struct mppe_lkm *)malloc(sizeof(*st), M_DEVBUF, M_NOWAIT);
	if (st == NULL)
		return NULL;
	bzero(st, sizeof(*st));
	st->opts = opts;
	st->dir = dir;
	bzero(&opts, sizeof(opts));
	mppe_lkm_states++;
	return st;
}

static void *
mppe_lkm_comp_alloc(u_char *options, int opt_len)
{

	return mppe_lkm_alloc(options, opt_len, MPPE_DIR_COMP);
}

static void *
mppe_lkm_decomp_alloc(u_char *options, int opt_len)
{

	return mppe_lkm_alloc(options, opt_len, MPPE_DIR_DECOMP);
}

static void
mppe_lkm_free(void *arg)
{
	struct mppe_lkm *st = arg;

	mppe_wipe(&st->core);
	bzero(st, sizeof(*st));
	free(st, M_DEVBUF);
	mppe_lkm_states--;
}

static int
mppe_lkm_init(struct mppe_lkm *st, u_char *options, int opt_len, int unit, int debug)
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
mppe_lkm_comp_init(void *arg, u_char *options, int opt_len, int unit, int hdrlen, int debug)
{

	(void)hdrlen;
	return mppe_lkm_init(arg, options, opt_len, unit, debug);
}

static int
mppe_lkm_decomp_init(void *arg, u_char *options, int opt_len, int unit, int hdrlen, int mru,
    int debug)
{

	(void)hdrlen;
	(void)mru;
	return mppe_lkm_init(arg, options, opt_len, unit, debug);
}

static void
mppe_lkm_comp_reset(void *arg)
{
	struct mppe_lkm *st = arg;

	if (st->running)
		mppe_comp_reset(&st->core);
}

static void
mppe_lkm_decomp_reset(void *arg)
{
	struct mppe_lkm *st = arg;

	if (st->running)
		mppe_decomp_reset(&st->core);
}

/* A packet-header mbuf with one cluster, or NULL. */
static struct mbuf *
mppe_lkm_getbuf(void)
{
	struct mbuf *m;

	MGETHDR(m, M_DONTWAIT, MT_DATA);
	if (m == NULL)
		return NULL;
	MCLGET(m, M_DONTWAIT);
	if ((m->m_flags & M_EXT) == 0) {
		m_freem(m);
		return NULL;
	}
	return m;
}

static void
mppe_lkm_scrub(struct mbuf *m)
{
	struct mbuf *n;
	int off = 0, i;
	u_char *p;

	for (n = m; n != NULL; n = n->m_next) {
		p = mtod(n, u_char *);
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
mppe_lkm_compress(void *arg, struct mbuf **mret, struct mbuf *mp, int slen, int max_len)
{
	struct mppe_lkm *st = arg;
	struct mbuf *m;
	u_char *out;
	mppe_size olen;
	int ilen = slen - 2;	/* protocol + payload: the frame after address/control */

	(void)max_len;
	*mret = NULL;
	if (!st->running)
		return 0;
	if (ilen < 2 || slen + MPPE_OVHD > MPPE_LKM_BUFLEN ||
	    (m = mppe_lkm_getbuf()) == NULL) {
		mppe_lkm_scrub(mp);
		return 0;
	}
	m_copydata(mp, 2, ilen, (caddr_t)st->buf);
	out = mtod(m, u_char *);
	if (mppe_compress(&st->core, st->buf, (mppe_size)ilen, out + PPP_HDRLEN,
	    (mppe_size)(MCLBYTES - PPP_HDRLEN), &olen) != MPPE_OK) {
		m_freem(m);
		mppe_lkm_scrub(mp);
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
mppe_lkm_decompress(void *arg, struct mbuf *mp, struct mbuf **dmpp)
{
	struct mppe_lkm *st = arg;
	struct mbuf *m, *n;
	u_char *out;
	mppe_size olen;
	int ilen = -PPP_HDRLEN, rc;

	*dmpp = NULL;
	if (!st->running)
		return DECOMP_FATALERROR;
	for (n = mp; n != NULL; n = n->m_next)
		ilen += n->m_len;
	if (ilen < MPPE_HDRLEN + MPPE_MIN_CIPHER || ilen > MPPE_LKM_BUFLEN ||
	    2 + MPPE_DECOMP_MAX(ilen) > MCLBYTES)
		return DECOMP_ERROR;
	if ((m = mppe_lkm_getbuf()) == NULL)
		return DECOMP_OK;	/* dropped before the core saw it */
	m_copydata(mp, PPP_HDRLEN, ilen, (caddr_t)st->buf);
	out = mtod(m, u_char *);
	rc = mppe_decompress(&st->core, st->buf, (mppe_size)ilen, out + 2,
	    (mppe_size)(MCLBYTES - 2), &olen);
	if (rc == MPPE_OK) {
		out[0] = PPP_ALLSTATIONS;
		out[1] = PPP_UI;
		m->m_len = m->m_pkthdr.len = 2 + (int)olen;
		*dmpp = m;
		return DECOMP_OK;
	}
	m_freem(m);
	if (rc == MPPE_E_DROP)
		return DECOMP_OK;
	return rc == MPPE_E_FATAL ? DECOMP_FATALERROR : DECOMP_ERROR;
}

static void
mppe_lkm_incomp(void *arg, struct mbuf *mp)
{
	struct mppe_lkm *st = arg;
	struct mbuf *n;
	int len = 0;

	if (!st->running)
		return;
	for (n = mp; n != NULL; n = n->m_next)
		len += n->m_len;
	mppe_incomp(&st->core, NULL, (mppe_size)len);
}

static void
mppe_lkm_stat(void *arg, struct compstat *cs)
{
	struct mppe_lkm *st = arg;
	struct mppe_stats s;

	mppe_stats(&st->core, &s);
	cs->unc_bytes = s.unc_bytes;
	cs->unc_packets = s.unc_packets;
	cs->comp_bytes = s.comp_bytes;
	cs->comp_packets = s.comp_packets;
	cs->inc_bytes = s.inc_bytes;
	cs->inc_packets = s.inc_packets;
	/* ratio << 8 without 64-bit arithmetic: scale down first */
	cs->ratio = s.comp_bytes == 0 ? 0 :
	    (s.unc_bytes > 0x7fffff ? (s.unc_bytes / (s.comp_bytes >> 8 | 1)) :
	    ((s.unc_bytes << 8) / s.comp_bytes));
}

MOD_MISC("mppe")

static int
mppe_lkm_load(struct lkm_table *lkmtp, int cmd)
{
	int i;

	(void)lkmtp;
	(void)cmd;
	for (i = 0; i < MPPE_LKM_NSLOTS - 1 && ppp_compressors[i] != NULL; i++)
		if (ppp_compressors[i]->compress_proto == CI_MPPE)
			return EEXIST;
	if (i >= MPPE_LKM_NSLOTS - 1)
		return ENOSPC;	/* no free slot before the terminating NULL */
	ppp_compressors[i + 1] = NULL;
	ppp_compressors[i] = &ppp_mppe;
	return 0;
}

static int
mppe_lkm_unload(struct lkm_table *lkmtp, int cmd)
{
	int i;

	(void)lkmtp;
	(void)cmd;
	if (mppe_lkm_states != 0)
		return EBUSY;
	for (i = 0; ppp_compressors[i] != NULL && ppp_compressors[i] != &ppp_mppe; i++)
		;
	if (ppp_compressors[i] == NULL)
		return ENOENT;
	do
		ppp_compressors[i] = ppp_compressors[i + 1];
	while (ppp_compressors[i++] != NULL);
	return 0;
}

static int
mppe_lkm_stat_cmd(struct lkm_table *lkmtp, int cmd)
{

	(void)lkmtp;
	(void)cmd;
	return 0;
}

int mppe_lkmentry(struct lkm_table *, int, int);

int
mppe_lkmentry(struct lkm_table *lkmtp, int cmd, int ver)
{

	DISPATCH(lkmtp, cmd, ver, mppe_lkm_load, mppe_lkm_unload, mppe_lkm_stat_cmd)
}
