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
 * Portable MPPE core (RFC 3078 framing, RFC 3079 key derivation).
 *
 * OS-neutral: it includes only "mppe_os.h", which every build (Linux glue,
 * NetBSD glue, userspace tests) supplies and which must define:
 *   mppe_u8, mppe_u16, mppe_u32   unsigned 8/16/32-bit integer types
 *   mppe_size                     an unsigned type for buffer lengths
 *   mppe_os_memcpy(d, s, n), mppe_os_memset(d, c, n), mppe_os_memcmp(a, b, n)
 *   void mppe_os_log(int unit, const char *msg)   (a plain string, no format)
 *
 * Buffer convention (linear buffers; the glue adds/strips the 4-byte PPP
 * header ff 03 00 fd):
 *   compress   in:  PPP protocol (2 bytes) + payload
 *              out: MPPE header (2 bytes) + ciphertext        (isize + MPPE_HDRLEN)
 *   decompress in:  MPPE header (2 bytes) + ciphertext
 *              out: PPP protocol (2 bytes, a 1-byte compressed protocol field
 *                   is expanded) + payload                    (<= MPPE_DECOMP_MAX(isize))
 * In and out must not overlap.  No function allocates, sleeps or uses floating
 * point; every loop is bounded by the packet length or a small constant.
 * The core does no locking: one state is used by one thread at a time.
 */
#ifndef MPPE_CORE_MPPE_H
#define MPPE_CORE_MPPE_H

#include "mppe_os.h"

#define MPPE_CORE_VERSION	"buildtool-mppe-core 1"	/* glue may expose it (modinfo, log) */

#define MPPE_CI		18	/* CCP option type of MPPE (CI_MPPE) */
#define MPPE_CILEN	6	/* length byte of the CCP option */
#define MPPE_KEYLEN	16	/* start key length pppd hands the kernel */
#define MPPE_OPTLEN	(MPPE_CILEN + MPPE_KEYLEN)	/* 22: option + start key, per direction */
#define MPPE_OVHD	4	/* frame growth on the wire: PPP_COMP protocol (2) + MPPE header (2) */
#define MPPE_HDRLEN	2	/* bytes the core puts in front: A/B/C/D bits + 12-bit coherency count */
#define MPPE_MIN_CIPHER	1	/* shortest ciphertext accepted: a compressed 1-byte protocol field */
#define MPPE_DECOMP_MAX(isize)	((isize) - MPPE_HDRLEN + 1)	/* worst-case decompress output */

/* Option byte 2..5 ("supported bits", most significant octet first) */
#define MPPE_OPT0_H	0x01	/* byte 2: stateless ("history-less") mode */
#define MPPE_OPT3_M	0x80	/* byte 5: 56-bit key */
#define MPPE_OPT3_S	0x40	/* byte 5: 128-bit key */
#define MPPE_OPT3_L	0x20	/* byte 5: 40-bit key */
#define MPPE_OPT3_D	0x10	/* byte 5: obsolete, ignored */
#define MPPE_OPT3_C	0x01	/* byte 5: MPPC compression; refused (the core only encrypts) */

/* First header byte */
#define MPPE_BIT_A	0x80	/* flushed: encryption state was reinitialised (key change/reset) */
#define MPPE_BIT_B	0x40	/* MPPC: history reset; must be 0 here */
#define MPPE_BIT_C	0x20	/* MPPC: packet compressed; must be 0 here */
#define MPPE_BIT_D	0x10	/* packet is encrypted; always 1 here */
#define MPPE_CCOUNT_MASK	0x0fff	/* coherency count: 12 bits, wraps at 4096 */
#define MPPE_CCOUNT_SPACE	4096	/* number of coherency count values */

/*
 * Stateless decompressor: at most this many key changes per packet.  A larger
 * coherency-count gap is caught up over several packets (each dropped with
 * MPPE_E_DROP until the key chain reaches the sender's), so per-packet work
 * stays bounded whatever count an attacker or a long outage presents.
 */
#define MPPE_MAX_REKEYS	64
/* Consecutive malformed packets after which decompress says MPPE_E_FATAL */
#define MPPE_SANITY_MAX	256

/* Return codes; the glue maps them to its kernel's (see docs/mppe.md). */
enum mppe_rc {
	MPPE_OK = 0,		/* success; *olen holds the output length */
	MPPE_E_RESET = -1,	/* decompress: sync lost, send a CCP Reset-Request (DECOMP_ERROR) */
	MPPE_E_DROP = -2,	/* decompress: drop this packet, a reset is already under way or not needed (DECOMP_ERROR) */
	MPPE_E_BADPKT = -3,	/* decompress: malformed packet (too short, bad A/B/C/D bits) dropped (DECOMP_ERROR) */
	MPPE_E_FATAL = -4,	/* decompress: too many bad packets or unusable state; take the link down (DECOMP_FATALERROR) */
	MPPE_E_NOSPACE = -5,	/* output buffer too small, or option too long for the state (ENOBUFS) */
	MPPE_E_BADOPT = -6,	/* CCP option malformed, too short or asks for something unsupported */
	MPPE_E_INVAL = -7	/* bad argument: NULL, unknown direction, state not initialised */
};

/* Direction given to mppe_init */
#define MPPE_DIR_COMP	1	/* transmit: mppe_compress */
#define MPPE_DIR_DECOMP	2	/* receive: mppe_decompress */

/* What mppe_parse_opts found in the 22-byte option pppd passes down */
struct mppe_opts {
	int		stateless;		/* 1: key change every packet; 0: stateful */
	int		keybits;		/* 40, 56 or 128 */
	mppe_u8		start_key[MPPE_KEYLEN];	/* RFC 3079 start key (MasterSendKey/MasterReceiveKey) */
};

/* Counters, mapped by the glue onto its kernel's struct compstat */
struct mppe_stats {
	mppe_u32	unc_bytes;	/* plaintext bytes (compress input / decompress output) */
	mppe_u32	unc_packets;	/* plaintext packets */
	mppe_u32	comp_bytes;	/* MPPE bytes (compress output / decompress input accepted) */
	mppe_u32	comp_packets;	/* MPPE packets */
	mppe_u32	inc_bytes;	/* unencrypted bytes seen by mppe_incomp */
	mppe_u32	inc_packets;	/* unencrypted packets seen by mppe_incomp */
	mppe_u32	errors;		/* decompress calls that did not return MPPE_OK */
	mppe_u32	rekeys;		/* RFC 3079 key changes done */
	mppe_u32	resets;		/* Reset-Requests honoured (comp) or needed (decomp) */
};

/* RC4 state (exposed for tests and the benchmark; fields private; 32-bit cells are faster) */
struct mppe_rc4 {
	mppe_u32	s[256];
	mppe_u32	i;
	mppe_u32	j;
};

/* SHA-1 state (exposed for tests; fields private) */
struct mppe_sha1 {
	mppe_u32	h[5];
	mppe_u32	nbytes_lo;	/* message length in bytes, low word */
	mppe_u32	nbytes_hi;	/* message length in bytes, high word */
	mppe_u8		buf[64];
	mppe_u32	buflen;
};
#define MPPE_SHA1_LEN	20	/* SHA-1 digest length */

/*
 * One direction of one link.  The glue allocates sizeof(struct mppe_state)
 * and calls mppe_init; fields are private to the core.
 */
struct mppe_state {
	struct mppe_rc4	rc4;			/* keystream state for the current session key */
	mppe_u8		start_key[MPPE_KEYLEN];	/* RFC 3079 start key */
	mppe_u8		session_key[MPPE_KEYLEN];	/* current session key */
	mppe_u32	keylen;			/* 8 (40/56-bit) or 16 (128-bit) */
	int		keybits;		/* 40, 56 or 128 */
	int		stateless;		/* 1: stateless, 0: stateful */
	int		dir;			/* MPPE_DIR_COMP or MPPE_DIR_DECOMP */
	int		unit;			/* PPP unit, passed to mppe_os_log */
	int		debug;			/* nonzero: log state changes */
	mppe_u32	ccount;			/* comp: last count sent; decomp: count of the current key */
	int		flush_pending;		/* comp: a Reset-Request asked for a rekey + A bit */
	int		discard;		/* decomp stateful: lost sync, waiting for a flushed packet */
	mppe_u32	sanity;			/* decomp: consecutive malformed packets */
	mppe_u32	magic;			/* set by mppe_init; catches use of an uninitialised state */
	struct mppe_stats stats;		/* counters */
};

/* Parse the CCP option + start key; 22 bytes, shorter is MPPE_E_BADOPT, longer MPPE_E_NOSPACE. */
int mppe_parse_opts(const mppe_u8 *opt, mppe_size optlen, struct mppe_opts *out);

/* Initialise st for one direction from parsed options; derives the first session key. */
int mppe_init(struct mppe_state *st, const struct mppe_opts *opts, int dir, int unit, int debug);

/* Encrypt one packet (isize >= 2, osize >= isize + MPPE_HDRLEN, else NOSPACE/INVAL, state untouched). */
int mppe_compress(struct mppe_state *st, const mppe_u8 *in, mppe_size isize,
    mppe_u8 *out, mppe_size osize, mppe_size *olen);

/* Decrypt one packet; needs osize >= MPPE_DECOMP_MAX(isize) (else MPPE_E_NOSPACE, state untouched). */
int mppe_decompress(struct mppe_state *st, const mppe_u8 *in, mppe_size isize,
    mppe_u8 *out, mppe_size osize, mppe_size *olen);

/* Peer's CCP Reset-Request: the next compressed packet changes key and carries the A bit. */
void mppe_comp_reset(struct mppe_state *st);

/* CCP Reset-Ack seen: nothing to undo in MPPE (the flushed packet resyncs), kept for symmetry. */
void mppe_decomp_reset(struct mppe_state *st);

/* An unencrypted packet arrived while MPPE is up: count it (the glue/kernel decides to drop it). */
void mppe_incomp(struct mppe_state *st, const mppe_u8 *in, mppe_size isize);

/* Copy the counters out. */
void mppe_stats(const struct mppe_state *st, struct mppe_stats *out);

/* Wipe keys and state (call before freeing). */
void mppe_wipe(struct mppe_state *st);

/* Primitives, exported for tests, the benchmark and glue that wants them */
void mppe_rc4_setkey(struct mppe_rc4 *rc4, const mppe_u8 *key, mppe_size keylen);	/* RC4 KSA */
void mppe_rc4_crypt(struct mppe_rc4 *rc4, const mppe_u8 *in, mppe_u8 *out, mppe_size len);	/* XOR keystream; in == out allowed */
void mppe_sha1_init(struct mppe_sha1 *ctx);	/* start a SHA-1 digest */
void mppe_sha1_update(struct mppe_sha1 *ctx, const mppe_u8 *data, mppe_size len);	/* feed bytes */
void mppe_sha1_final(struct mppe_sha1 *ctx, mppe_u8 digest[MPPE_SHA1_LEN]);	/* finish; ctx is wiped */

/* RFC 3079 GetNewKeyFromSHA: out = SHA1(start, pad1, session, pad2)[0..keylen) (keylen <= 16). */
void mppe_get_new_key_from_sha(const mppe_u8 *start_key, const mppe_u8 *session_key,
    mppe_size keylen, mppe_u8 *out);

/* RFC 3079 initial session key from a start key (SHA step + 40/56-bit salt), keybits 40/56/128. */
int mppe_start_to_session_key(const mppe_u8 *start_key, int keybits, mppe_u8 *out);

/* RFC 3078 key change: session_key <- RC4(SHA step) + salt, in place, keybits 40/56/128. */
int mppe_change_key(const mppe_u8 *start_key, int keybits, mppe_u8 *session_key);

#endif /* MPPE_CORE_MPPE_H */
