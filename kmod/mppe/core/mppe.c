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
 * MPPE framing (RFC 3078) and key derivation (RFC 3079).
 *
 * Key schedule, per direction: the start key pppd derived from MS-CHAP is
 * hashed once into the initial session key; each key change hashes the start
 * key with the current session key, runs the result through RC4 keyed by
 * itself, and salts 40/56-bit keys.  The RC4 keystream restarts at each key
 * change.  Stateless: a key change before every packet, so packet n of the
 * link (coherency count n mod 4096) uses the (n+1)th key.  Stateful: the RC4
 * stream runs across packets and the key changes on a "flag" packet (count
 * low byte 0xff) and on the first packet after a CCP Reset-Request; every
 * packet sent after a key change carries the A (flushed) bit.
 */
#include "mppe.h"

#define MPPE_MAGIC	0x4d505045UL

#ifdef MPPE_NEGATIVE_CONTROL_SHORT_FRAMES
/* Test builds only: no length check, so the fuzz suite can prove it catches the over-read. */
#define MIN_FRAME	MPPE_HDRLEN
#else
#define MIN_FRAME	(MPPE_HDRLEN + MPPE_MIN_CIPHER)
#endif

typedef char mppe_u8_must_be_8_bits[sizeof(mppe_u8) == 1 ? 1 : -1];
typedef char mppe_u32_must_be_32_bits[sizeof(mppe_u32) == 4 ? 1 : -1];

static const mppe_u8 sha_pad1[40] = { 0 };
static const mppe_u8 sha_pad2[40] = {
	0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
	0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
	0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2,
	0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2, 0xf2
};

static mppe_u32
keylen_for(int keybits)
{
	switch (keybits) {
	case 40:
	case 56:
		return 8;
	case 128:
		return 16;
	default:
		return 0;
	}
}

/* RFC 3079 3.1/3.2: reduced keys keep their length, the top bytes become a fixed salt. */
static void
salt_key(mppe_u8 *key, int keybits)
{
	if (keybits == 40) {
		key[0] = 0xd1;
		key[1] = 0x26;
		key[2] = 0x9e;
	} else if (keybits == 56) {
		key[0] = 0xd1;
	}
}

void
mppe_get_new_key_from_sha(const mppe_u8 *start_key, const mppe_u8 *session_key,
    mppe_size keylen, mppe_u8 *out)
{
	struct mppe_sha1 ctx;
	mppe_u8 digest[MPPE_SHA1_LEN];

	if (keylen > MPPE_KEYLEN)
		keylen = MPPE_KEYLEN;
	mppe_sha1_init(&ctx);
	mppe_sha1_update(&ctx, start_key, keylen);
	mppe_sha1_update(&ctx, sha_pad1, sizeof(sha_pad1));
	mppe_sha1_update(&ctx, session_key, keylen);
	mppe_sha1_update(&ctx, sha_pad2, sizeof(sha_pad2));
	mppe_sha1_final(&ctx, digest);
	mppe_os_memcpy(out, digest, keylen);
	mppe_os_memset(digest, 0, sizeof(digest));
}

int
mppe_start_to_session_key(const mppe_u8 *start_key, int keybits, mppe_u8 *out)
{
	mppe_u32 keylen = keylen_for(keybits);

	if (keylen == 0 || start_key == 0 || out == 0)
		return MPPE_E_INVAL;
	mppe_get_new_key_from_sha(start_key, start_key, keylen, out);
	salt_key(out, keybits);
	return MPPE_OK;
}

/* Key change with caller-supplied RC4 scratch (the state's own, which is rekeyed right after). */
static void
change_key(const mppe_u8 *start_key, int keybits, mppe_u32 keylen, mppe_u8 *session_key,
    struct mppe_rc4 *scratch)
{
	mppe_u8 interim[MPPE_KEYLEN];

	mppe_get_new_key_from_sha(start_key, session_key, keylen, interim);
	mppe_rc4_setkey(scratch, interim, keylen);
	mppe_rc4_crypt(scratch, interim, session_key, keylen);
	salt_key(session_key, keybits);
	mppe_os_memset(interim, 0, sizeof(interim));
}

int
mppe_change_key(const mppe_u8 *start_key, int keybits, mppe_u8 *session_key)
{
	struct mppe_rc4 scratch;
	mppe_u32 keylen = keylen_for(keybits);

	if (keylen == 0 || start_key == 0 || session_key == 0)
		return MPPE_E_INVAL;
	change_key(start_key, keybits, keylen, session_key, &scratch);
	mppe_os_memset(&scratch, 0, sizeof(scratch));
	return MPPE_OK;
}

static void
rekey(struct mppe_state *st)
{
	change_key(st->start_key, st->keybits, st->keylen, st->session_key, &st->rc4);
	mppe_rc4_setkey(&st->rc4, st->session_key, st->keylen);
	st->stats.rekeys++;
}

/* Log "msg 0xNNN" without a formatter (the core has no libc). */
static void
log_num(const struct mppe_state *st, const char *msg, mppe_u32 v)
{
	static const char hex[] = "0123456789abcdef";
	char buf[96];
	unsigned int n = 0, shift;

	while (msg[n] != '\0' && n < sizeof(buf) - 12) {
		buf[n] = msg[n];
		n++;
	}
	buf[n++] = ' ';
	buf[n++] = '0';
	buf[n++] = 'x';
	for (shift = 28; ; shift -= 4) {
		if ((v >> shift) != 0 || shift == 0)
			buf[n++] = hex[(v >> shift) & 0xf];
		if (shift == 0)
			break;
	}
	buf[n] = '\0';
	mppe_os_log(st->unit, buf);
}

static int
state_ok(const struct mppe_state *st, int dir)
{
	return st != 0 && st->magic == MPPE_MAGIC && st->dir == dir;
}

int
mppe_parse_opts(const mppe_u8 *opt, mppe_size optlen, struct mppe_opts *out)
{
	mppe_u8 bits;

	if (opt == 0 || out == 0)
		return MPPE_E_INVAL;
	if (optlen < MPPE_OPTLEN)
		return MPPE_E_BADOPT;
	if (opt[0] != MPPE_CI || opt[1] != MPPE_CILEN)
		return MPPE_E_BADOPT;
	/* Longer is well-formed (e.g. the 1999 two-key layout) but does not fit the state. */
	if (optlen > MPPE_OPTLEN)
		return MPPE_E_NOSPACE;
	bits = opt[5];
	if (bits & MPPE_OPT3_C)
		return MPPE_E_BADOPT;
	if (bits & MPPE_OPT3_S)
		out->keybits = 128;
	else if (bits & MPPE_OPT3_M)
		out->keybits = 56;
	else if (bits & MPPE_OPT3_L)
		out->keybits = 40;
	else
		return MPPE_E_BADOPT;
	out->stateless = (opt[2] & MPPE_OPT0_H) ? 1 : 0;
	mppe_os_memcpy(out->start_key, opt + MPPE_CILEN, MPPE_KEYLEN);
	return MPPE_OK;
}

int
mppe_init(struct mppe_state *st, const struct mppe_opts *opts, int dir, int unit, int debug)
{
	mppe_u32 keylen;

	if (st == 0 || opts == 0 || (dir != MPPE_DIR_COMP && dir != MPPE_DIR_DECOMP))
		return MPPE_E_INVAL;
	keylen = keylen_for(opts->keybits);
	if (keylen == 0)
		return MPPE_E_BADOPT;
	mppe_os_memset(st, 0, sizeof(*st));
	st->keybits = opts->keybits;
	st->keylen = keylen;
	st->stateless = opts->stateless ? 1 : 0;
	st->dir = dir;
	st->unit = unit;
	st->debug = debug;
	mppe_os_memcpy(st->start_key, opts->start_key, MPPE_KEYLEN);
	mppe_start_to_session_key(st->start_key, st->keybits, st->session_key);
	mppe_rc4_setkey(&st->rc4, st->session_key, keylen);
	/* "Last count" one before 0, so the first packet carries count 0. */
	st->ccount = MPPE_CCOUNT_MASK;
	st->magic = MPPE_MAGIC;
	if (debug)
		log_num(st, st->stateless ? "mppe: init stateless, key bits" :
		    "mppe: init stateful, key bits", (mppe_u32)st->keybits);
	return MPPE_OK;
}

int
mppe_compress(struct mppe_state *st, const mppe_u8 *in, mppe_size isize,
    mppe_u8 *out, mppe_size osize, mppe_size *olen)
{
	mppe_u32 cc;
	mppe_u8 bits = MPPE_BIT_D;

	if (!state_ok(st, MPPE_DIR_COMP) || in == 0 || out == 0 || olen == 0 || isize < 2)
		return MPPE_E_INVAL;
	if (osize < MPPE_HDRLEN || osize - MPPE_HDRLEN < isize)
		return MPPE_E_NOSPACE;
	cc = (st->ccount + 1) & MPPE_CCOUNT_MASK;
	st->ccount = cc;
	if (st->stateless || (cc & 0xff) == 0xff || st->flush_pending) {
		rekey(st);
		bits |= MPPE_BIT_A;
		if (st->debug && st->flush_pending)
			log_num(st, "mppe: rekeyed after Reset-Request, count", cc);
		st->flush_pending = 0;
	}
	out[0] = (mppe_u8)(bits | (cc >> 8));
	out[1] = (mppe_u8)(cc & 0xff);
	mppe_rc4_crypt(&st->rc4, in, out + MPPE_HDRLEN, isize);
	*olen = isize + MPPE_HDRLEN;
	st->stats.unc_bytes += (mppe_u32)isize;
	st->stats.unc_packets++;
	st->stats.comp_bytes += (mppe_u32)(isize + MPPE_HDRLEN);
	st->stats.comp_packets++;
	return MPPE_OK;
}

static int
bad_packet(struct mppe_state *st, const char *why)
{
	st->stats.errors++;
	if (st->debug)
		log_num(st, why, st->sanity);
	if (++st->sanity >= MPPE_SANITY_MAX)
		return MPPE_E_FATAL;
	return MPPE_E_BADPKT;
}

static int
drop(struct mppe_state *st, int rc)
{
	st->stats.errors++;
	return rc;
}

/*
 * Stateless: bring the key chain to count cc.  Late (or duplicate) packets are
 * dropped; a gap over MPPE_MAX_REKEYS advances the chain by that much and
 * drops this packet, so a later packet finishes the catch-up.
 */
static int
stateless_sync(struct mppe_state *st, mppe_u32 cc)
{
	mppe_u32 gap = (cc - st->ccount) & MPPE_CCOUNT_MASK;
	mppe_u32 n;

	if (gap == 0 || gap > MPPE_CCOUNT_SPACE / 2) {
		if (st->debug)
			log_num(st, "mppe: late or duplicate packet dropped, count", cc);
		return drop(st, MPPE_E_DROP);
	}
	n = gap > MPPE_MAX_REKEYS ? MPPE_MAX_REKEYS : gap;
	st->ccount = (st->ccount + n) & MPPE_CCOUNT_MASK;
	while (n-- > 0)
		rekey(st);
	if (st->ccount != cc) {
		if (st->debug)
			log_num(st, "mppe: catching up key changes, at count", st->ccount);
		return drop(st, MPPE_E_DROP);
	}
	return MPPE_OK;
}

/*
 * Protocols that travel inside MPPE in practice (RFC 1700 / IANA PPP DLL
 * protocol numbers).  A 1-byte (compressed) field is the number itself.
 */
static const mppe_u16 known_protocols[] = {
	0x0021,	/* IPv4 */
	0x0057,	/* IPv6 */
	0x002d,	/* Van Jacobson compressed TCP/IP */
	0x002f,	/* Van Jacobson uncompressed TCP/IP */
	0x002b,	/* Novell IPX */
	0x0029,	/* AppleTalk */
	0x0031,	/* bridging PDU */
	0x0281	/* MPLS unicast */
};

static int
known_protocol(const mppe_u8 *p, mppe_size len)
{
	mppe_u32 proto;
	unsigned int i;

	if (p[0] & 1)
		proto = p[0];
	else if (len >= 2)
		proto = ((mppe_u32)p[0] << 8) | p[1];
	else
		return 0;
	for (i = 0; i < sizeof(known_protocols) / sizeof(known_protocols[0]); i++)
		if (proto == known_protocols[i])
			return 1;
	return 0;
}

/*
 * Key changes the sender may have made for Reset-Requests whose flushed
 * reply we never saw (beyond the one this flushed frame stands for).
 */
#define MPPE_RESYNC_EXTRA	3

/*
 * Resync on a flushed frame after a loss.  The sender changed key once per
 * flag packet we missed (known from the counts), once for this frame, and
 * once more for each earlier flushed reply to a Reset-Request that was lost
 * (unknown: MPPE carries no key number).  Candidates with 0..RESYNC_EXTRA
 * such extra changes are tried on the first two plaintext bytes and the
 * first that decrypts to a protocol from known_protocols wins; if none does,
 * no extra change is assumed, which is what Linux's module always assumes.
 * At most 15 + 1 + RESYNC_EXTRA key changes.
 */
static void
stateful_resync(struct mppe_state *st, mppe_u32 blocks, const mppe_u8 *cipher, mppe_size clen)
{
	mppe_u8 cand[MPPE_RESYNC_EXTRA + 1][MPPE_KEYLEN];
	mppe_u8 probe[2];
	mppe_size plen = clen < 2 ? clen : 2;
	unsigned int r, pick = 0;

	while (blocks-- > 0) {
		change_key(st->start_key, st->keybits, st->keylen, st->session_key, &st->rc4);
		st->stats.rekeys++;
	}
	mppe_os_memcpy(cand[0], st->session_key, MPPE_KEYLEN);
	for (r = 0; r <= MPPE_RESYNC_EXTRA; r++) {
		if (r > 0)
			mppe_os_memcpy(cand[r], cand[r - 1], MPPE_KEYLEN);
		change_key(st->start_key, st->keybits, st->keylen, cand[r], &st->rc4);
		mppe_rc4_setkey(&st->rc4, cand[r], st->keylen);
		mppe_rc4_crypt(&st->rc4, cipher, probe, plen);
		if (known_protocol(probe, plen)) {
			pick = r;
			break;
		}
	}
	mppe_os_memcpy(st->session_key, cand[pick], MPPE_KEYLEN);
	mppe_rc4_setkey(&st->rc4, st->session_key, st->keylen);
	st->stats.rekeys += pick + 1;
	mppe_os_memset(cand, 0, sizeof(cand));
	mppe_os_memset(probe, 0, sizeof(probe));
	if (st->debug && pick > 0)
		log_num(st, "mppe: resync assumed lost Reset-Request replies:", pick);
}

/*
 * Stateful: the key changes on every flushed packet (which covers flag packets
 * and Reset-Request rekeys); after a loss, also once per flag packet missed,
 * i.e. per 256-block boundary crossed (at most 15: the count is 12 bits and a
 * packet more than half the count space behind is taken as late, not ahead).
 * A late or duplicate packet is dropped without touching the state: the RC4
 * stream has not moved, so no reset is needed.
 */
static int
stateful_sync(struct mppe_state *st, mppe_u32 cc, int flushed, const mppe_u8 *cipher, mppe_size clen)
{
	mppe_u32 ahead = (cc - st->ccount) & MPPE_CCOUNT_MASK;
	mppe_u32 expect = (st->ccount + 1) & MPPE_CCOUNT_MASK;

	if (ahead == 0 || ahead > MPPE_CCOUNT_SPACE / 2)
		return drop(st, MPPE_E_DROP);
	if (ahead == 1 && !st->discard) {
		if (flushed || (cc & 0xff) == 0xff)
			rekey(st);
		return MPPE_OK;
	}
	if (!flushed) {
		if (st->discard)
			return drop(st, MPPE_E_DROP);
		st->discard = 1;
		st->stats.resets++;
		if (st->debug)
			log_num(st, "mppe: packet loss, asking for a reset, got count", cc);
		return drop(st, MPPE_E_RESET);
	}
	stateful_resync(st, ((cc >> 8) - (expect >> 8)) & 0xf, cipher, clen);
	st->discard = 0;
	if (st->debug)
		log_num(st, "mppe: resynchronised on flushed packet, count", cc);
	return MPPE_OK;
}

int
mppe_decompress(struct mppe_state *st, const mppe_u8 *in, mppe_size isize,
    mppe_u8 *out, mppe_size osize, mppe_size *olen)
{
	mppe_u32 cc;
	mppe_u8 bits, first;
	mppe_size clen;
	int rc, flushed;

	if (!state_ok(st, MPPE_DIR_DECOMP) || in == 0 || out == 0 || olen == 0)
		return MPPE_E_INVAL;
	if (isize < MIN_FRAME)
		return bad_packet(st, "mppe: packet too short, bad packets in a row");
	if (osize < MPPE_DECOMP_MAX(isize))
		return MPPE_E_NOSPACE;
	bits = in[0] & 0xf0;
	cc = (((mppe_u32)in[0] & 0x0f) << 8) | in[1];
	flushed = (bits & MPPE_BIT_A) != 0;
	if (!(bits & MPPE_BIT_D) || (bits & (MPPE_BIT_B | MPPE_BIT_C)) != 0)
		return bad_packet(st, "mppe: not an MPPE-only packet, bad packets in a row");
	if (st->stateless) {
		if (!flushed)
			return bad_packet(st, "mppe: stateless packet without A bit, bad packets in a row");
		rc = stateless_sync(st, cc);
	} else {
		rc = stateful_sync(st, cc, flushed, in + MPPE_HDRLEN, isize - MPPE_HDRLEN);
	}
	if (rc != MPPE_OK)
		return rc;
	st->ccount = cc;
	st->sanity = 0;

	clen = isize - MPPE_HDRLEN;
	mppe_rc4_crypt(&st->rc4, in + MPPE_HDRLEN, &first, 1);
	if (first & 1) {
		/* Protocol-field compression: restore the leading zero byte. */
		out[0] = 0;
		out[1] = first;
		mppe_rc4_crypt(&st->rc4, in + MPPE_HDRLEN + 1, out + 2, clen - 1);
		*olen = clen + 1;
	} else {
		out[0] = first;
		mppe_rc4_crypt(&st->rc4, in + MPPE_HDRLEN + 1, out + 1, clen - 1);
		*olen = clen;
	}
	st->stats.comp_bytes += (mppe_u32)isize;
	st->stats.comp_packets++;
	st->stats.unc_bytes += (mppe_u32)*olen;
	st->stats.unc_packets++;
	return MPPE_OK;
}

void
mppe_comp_reset(struct mppe_state *st)
{
	if (!state_ok(st, MPPE_DIR_COMP))
		return;
	st->flush_pending = 1;
	st->stats.resets++;
}

void
mppe_decomp_reset(struct mppe_state *st)
{
	(void)st;
}

void
mppe_incomp(struct mppe_state *st, const mppe_u8 *in, mppe_size isize)
{
	(void)in;
	if (!state_ok(st, MPPE_DIR_DECOMP))
		return;
	st->stats.inc_bytes += (mppe_u32)isize;
	st->stats.inc_packets++;
	if (st->debug)
		log_num(st, "mppe: unencrypted packet while MPPE is up, length", (mppe_u32)isize);
}

void
mppe_stats(const struct mppe_state *st, struct mppe_stats *out)
{
	if (st == 0 || out == 0)
		return;
	mppe_os_memcpy(out, &st->stats, sizeof(*out));
}

void
mppe_wipe(struct mppe_state *st)
{
	if (st != 0)
		mppe_os_memset(st, 0, sizeof(*st));
}
