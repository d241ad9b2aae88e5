/*-
 * Copyright (c) 2026 The buildtool project contributors.
 * SPDX-License-Identifier: BSD-2-Clause (full text in agent.c)
 */

/*
 * Traffic through the kernel's ppp unit, included by agent.c.  The agent is the
 * PPP peer on the pty master and pppd's user of the slave at once:
 *
 *   a2k: the agent encrypts (our core) and writes the frame on the master; the
 *        kernel's if_ppp decrypts it with ppp_mppe and, the protocol being
 *        none the kernel handles, queues it for the slave's reader: the agent
 *        reads it there and compares it byte for byte.
 *   k2a: the agent writes a frame on the slave (as pppd writes control
 *        frames); the kernel encrypts it with ppp_mppe and sends it on the
 *        tty; the agent reads it from the master and decrypts it (our core).
 *
 * Faults are injected on the wire between encryption and the other side:
 * drop, dup(licate), swap (with the next), corrupt (a ciphertext byte), jump
 * (the coherency count of a frame moved forward).
 *
 * CCP as if_ppp sees it (net/if_ppp.c, ppp_ccp): a Configure-Ack pppd sends
 * starts the kernel's compressor, one it receives starts the decompressor,
 * both only while SC_CCP_OPEN is set and SC_CCP_UP is not.  Resets: on
 * SC_DC_ERROR pppd sends a Reset-Request, the peer resets its compressor and
 * answers Reset-Ack, which resets the kernel's decompressor on its way in; a
 * Reset-Request from the peer reaches pppd, whose Reset-Ack resets the
 * kernel's compressor on its way out.  The agent plays both pppd and the peer.
 */

#define PROTO_TEST	0x0201	/* a protocol no kernel code handles: decrypted frames go to the slave */
#define CCP_PROTO	0x80fd
#define CCP_CONFACK	2
#define CCP_RESETREQ	14
#define CCP_RESETACK	15

static struct mppe_state a2k, k2a;
static int keys_set;
static u32 resets_sent, resets_seen;

/* keys OPT_K2A OPT_A2K: the agent's compressor (a2k) and decompressor (k2a) from CCP options */
static int
cmd_keys(char **argv, int argc)
{
	struct mppe_opts o;
	u8 b[64];
	long n;
	int rc;

	if (argc < 3)
		return EINVAL;
	if ((n = unhex(argv[1], b, sizeof(b))) < 0 || mppe_parse_opts(b, (mppe_size)n, &o) != MPPE_OK)
		return EINVAL;
	if ((rc = mppe_init(&k2a, &o, MPPE_DIR_DECOMP, 0, 0)) != MPPE_OK)
		return EINVAL;
	if ((n = unhex(argv[2], b, sizeof(b))) < 0 || mppe_parse_opts(b, (mppe_size)n, &o) != MPPE_OK)
		return EINVAL;
	if ((rc = mppe_init(&a2k, &o, MPPE_DIR_COMP, 0, 0)) != MPPE_OK)
		return EINVAL;
	keys_set = 1;
	resets_sent = resets_seen = 0;
	return 0;
}

static u32 rng;

static u32
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* Payload i of a run: protocol + bytes from the seed, so both ends can rebuild it */
static size_t
make_payload(u8 *p, u32 seed, u32 i, size_t size)
{
	size_t k;

	rng = seed * 2654435761U + i * 40503U + 1;
	p[0] = PROTO_TEST >> 8;
	p[1] = PROTO_TEST & 0xff;
	for (k = 0; k < size; k++)
		p[2 + k] = (u8)rnd();
	return size + 2;
}

/* Fault plan: "drop=3,7 dup=5 swap=9 corrupt=11 jump=13" -> what happens to frame i */
#define F_DROP		1
#define F_DUP		2
#define F_SWAP		4
#define F_CORRUPT	8
#define F_JUMP		16

static int
in_list(const char *list, u32 i)
{
	while (list && *list && *list != ' ') {
		if (num(list) == i)
			return 1;
		while (*list >= '0' && *list <= '9')
			list++;
		if (*list == ',')
			list++;
	}
	return 0;
}

static int
faults_of(char **argv, int argc, u32 i)
{
	static const struct { const char *name; int bit; } kinds[] = {
		{ "drop=", F_DROP }, { "dup=", F_DUP }, { "swap=", F_SWAP }, { "corrupt=", F_CORRUPT },
		{ "jump=", F_JUMP }, { 0, 0 } };
	int a, k, f = 0;

	for (a = 0; a < argc; a++)
		for (k = 0; kinds[k].name; k++) {
			size_t n = slen(kinds[k].name);

			if (memcmp(argv[a], kinds[k].name, n) == 0 && in_list(argv[a] + n, i))
				f |= kinds[k].bit;
		}
	return f;
}

/* Read what the slave has for us within ms; -1 timeout */
static long
slave_read(u8 *dst, size_t max, long ms)
{
	struct pollfd pfd;
	long rc;

	pfd.fd = slave;
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = sc3(SYS_poll, &pfd, 1, ms);
	if (rc <= 0)
		return -1;
	rc = sc3(SYS_read, slave, dst, max);
	return rc < 0 ? -1 : rc;
}

/* A CCP packet (code, id, options) with address/control: 4 + 4 + optlen bytes into f */
static size_t
ccp_frame(u8 *f, int code, int id, const u8 *opt, size_t optlen)
{
	f[0] = 0xff;
	f[1] = 0x03;
	f[2] = CCP_PROTO >> 8;
	f[3] = CCP_PROTO & 0xff;
	f[4] = (u8)code;
	f[5] = (u8)id;
	f[6] = (u8)((4 + optlen) >> 8);
	f[7] = (u8)(4 + optlen);
	if (optlen)
		memcpy(f + 8, opt, optlen);
	return 8 + optlen;
}

static int
is_ccp(const u8 *f, long n, int code)
{
	return n >= 8 && f[0] == 0xff && f[1] == 0x03 && f[2] == (CCP_PROTO >> 8) &&
	    f[3] == (CCP_PROTO & 0xff) && f[4] == code;
}

static int ccp_id;

/* The peer sends a CCP Reset-Request on the wire (its decryptor lost sync) */
static int
peer_send_resetreq(void)
{
	u8 f[8];

	resets_sent++;
	return hdlc_send(f, ccp_frame(f, CCP_RESETREQ, ++ccp_id, 0, 0));
}

/* pppd's side: answer Reset-Requests that reached the slave with a Reset-Ack (resets the kernel's
 * compressor on its way out); returns how many */
static int
pppd_answer_resetreqs(long ms)
{
	u8 f[8];
	long n;
	int count = 0;

	while ((n = slave_read(rxframe, sizeof(rxframe), ms)) >= 0) {
		if (is_ccp(rxframe, n, CCP_RESETREQ)) {
			sc3(SYS_write, slave, f, ccp_frame(f, CCP_RESETACK, rxframe[5], 0, 0));
			count++;
		}
	}
	return count;
}

/* pppd's side of a kernel decompression error: SC_DC_ERROR -> Reset-Request out through the kernel; the
 * peer (us again) resets its compressor and sends Reset-Ack, which resets the kernel's decompressor */
static void
handle_kernel_dc_error(void)
{
	u8 f[8];
	long n;
	int flags;

	if (sc3(SYS_ioctl, slave, PPPIOCGFLAGS, &flags) < 0 || !(flags & (SC_DC_ERROR | SC_DC_FERROR)))
		return;
	resets_seen++;
	sc3(SYS_write, slave, f, ccp_frame(f, CCP_RESETREQ, ++ccp_id, 0, 0));
	while ((n = hdlc_recv(pkt, sizeof(pkt), 300)) > 0)
		if (is_ccp(pkt, n, CCP_RESETREQ)) {
			mppe_comp_reset(&a2k);
			hdlc_send(f, ccp_frame(f, CCP_RESETACK, pkt[5], 0, 0));
			break;
		}
	while (slave_read(rxframe, sizeof(rxframe), 50) >= 0)
		;
}

/* ccpup OPT_K2A OPT_A2K: CCP up as pppd and the peer would bring it: SC_CCP_OPEN, pppd's Configure-Ack
 * (kernel compressor), the peer's Configure-Ack (kernel decompressor), SC_CCP_UP; prints the flags */
static int
cmd_ccpup(char **argv, int argc)
{
	u8 opt[64], f[80];
	int flags = SC_CCP_OPEN;
	long n;

	if (argc < 3 || slave < 0)
		return slave < 0 ? EBADF : EINVAL;
	if (sc3(SYS_ioctl, slave, PPPIOCSFLAGS, &flags) < 0)
		return EINVAL;
	if ((n = unhex(argv[1], opt, sizeof(opt))) < MPPE_CILEN)
		return EINVAL;
	sc3(SYS_write, slave, f, ccp_frame(f, CCP_CONFACK, ++ccp_id, opt, MPPE_CILEN));
	while (hdlc_recv(pkt, sizeof(pkt), 200) > 0)
		;
	if ((n = unhex(argv[2], opt, sizeof(opt))) < MPPE_CILEN)
		return EINVAL;
	hdlc_send(f, ccp_frame(f, CCP_CONFACK, ++ccp_id, opt, MPPE_CILEN));
	while (slave_read(rxframe, sizeof(rxframe), 200) >= 0)
		;
	flags = SC_CCP_OPEN | SC_CCP_UP;
	if (sc3(SYS_ioctl, slave, PPPIOCSFLAGS, &flags) < 0)
		return EINVAL;
	sc3(SYS_ioctl, slave, PPPIOCGFLAGS, &flags);
	put(". flags=");
	putnum((u32)flags);
	put((flags & SC_COMP_RUN) ? " comp_run" : "");
	put((flags & SC_DECOMP_RUN) ? " decomp_run" : "");
	put("\n");
	return (flags & (SC_COMP_RUN | SC_DECOMP_RUN)) == (SC_COMP_RUN | SC_DECOMP_RUN) ? 0 : ENOENT;
}

static u8 held[FRAME_MAX];
static size_t held_len;

/* Compare a frame read from the slave (address/control, protocol, payload) with payload i */
static int
matches(const u8 *got, long n, u32 seed, u32 i, size_t size)
{
	size_t len = make_payload(pkt2, seed, i, size);

	if (n == (long)len + 2 && got[0] == 0xff && got[1] == 0x03)
		return memcmp(got + 2, pkt2, len) == 0;
	if (n == (long)len)
		return memcmp(got, pkt2, len) == 0;
	return 0;
}

static u8 marks[4096];

/* Read what the kernel decrypted for the slave's reader, marking the frames of the run it matches */
static void
a2k_collect(u32 n, u32 size, u32 seed, long ms, u32 *bad)
{
	long got;
	u32 k;

	while ((got = slave_read(rxframe, sizeof(rxframe), ms)) >= 0) {
		for (k = 0; k < n; k++)
			if (marks[k] == 'x' && matches(rxframe, got, seed, k, size)) {
				marks[k] = '.';
				break;
			}
		if (k == n)
			(*bad)++;
	}
}

#define BATCH	16	/* frames between two reads of the other side (the kernel's queues hold 50-256) */

/* a2k N SIZE SEED [faults]: frames the kernel must decrypt; prints one mark per frame */
static int
cmd_a2k(char **argv, int argc)
{
	u32 n = (u32)num(argv[1]), size = (u32)num(argv[2]), seed = (u32)num(argv[3]), i;
	u32 ok = 0, bad = 0, lost = 0;
	mppe_size olen;
	int rc;

	if (argc < 4 || !keys_set || slave < 0 || n >= sizeof(marks) || size + 8 > FRAME_MAX)
		return !keys_set || slave < 0 ? EBADF : EINVAL;
	held_len = 0;
	for (i = 0; i < n; i++)
		marks[i] = 'x';
	for (i = 0; i < n; i++) {
		int f = faults_of(argv + 4, argc - 4, i);
		size_t len = make_payload(pkt2, seed, i, size);

		pkt[0] = 0xff;
		pkt[1] = 0x03;
		pkt[2] = 0x00;
		pkt[3] = 0xfd;
		rc = mppe_compress(&a2k, pkt2, len, pkt + 4, sizeof(pkt) - 4, &olen);
		if (rc != MPPE_OK)
			return E2BIG;
		if (f & F_CORRUPT)
			pkt[4 + 2 + olen / 2 - 1] ^= 0x5a;
		if (f & F_JUMP)
			pkt[5] = (u8)(pkt[5] + 7);	/* coherency count + 7 (low byte) */
		if (!(f & F_DROP) && (f & F_SWAP)) {
			memcpy(held, pkt, olen + 4);
			held_len = olen + 4;
		} else if (!(f & F_DROP)) {
			hdlc_send(pkt, olen + 4);
			if (f & F_DUP)
				hdlc_send(pkt, olen + 4);
			if (held_len) {
				hdlc_send(held, held_len);
				held_len = 0;
			}
		}
		if (i % BATCH == BATCH - 1)
			a2k_collect(n, size, seed, size > 8000 ? 200 : 5, &bad);
	}
	a2k_collect(n, size, seed, 400, &bad);
	for (i = 0; i < n; i++)
		marks[i] == '.' ? ok++ : lost++;
	handle_kernel_dc_error();
	put(". ok=");
	putnum(ok);
	put(" lost=");
	putnum(lost);
	put(" garbled=");
	putnum(bad);
	put(" resets=");
	putnum(resets_seen);
	put(" marks=");
	marks[n] = 0;
	put((const char *)marks);
	put("\n");
	return 0;
}

struct k2a_run {
	u32 n, size, seed, seen, ok, bad, errs;
	char **faults;
	int nfaults;
};

/* Decrypt what the kernel sent on the wire (our core), marking the frames of the run it matches */
static void
k2a_collect(struct k2a_run *r, long ms)
{
	mppe_size olen;
	long got;
	u32 k;
	int rc;

	while ((got = hdlc_recv(pkt, sizeof(pkt), ms)) > 0) {
		int f;

		if (is_ccp(pkt, got, CCP_RESETACK)) {
			mppe_decomp_reset(&k2a);
			continue;
		}
		if (got < 6 || pkt[2] != 0x00 || pkt[3] != 0xfd) {
			r->bad++;
			continue;
		}
		f = faults_of(r->faults, r->nfaults, r->seen++);
		if (f & F_DROP)
			continue;
		rc = mppe_decompress(&k2a, pkt + 4, (mppe_size)got - 4, rxframe, sizeof(rxframe), &olen);
		if (rc == MPPE_E_RESET) {
			r->errs++;
			peer_send_resetreq();
			pppd_answer_resetreqs(100);
			continue;
		}
		if (rc != MPPE_OK) {
			r->errs++;
			continue;
		}
		for (k = 0; k < r->n; k++)
			if (marks[k] == 'x' && (long)olen == (long)r->size + 2 &&
			    (make_payload(pkt2, r->seed, k, r->size), memcmp(rxframe, pkt2, olen) == 0)) {
				marks[k] = '.';
				break;
			}
		if (k == r->n)
			r->bad++;
	}
}

/* k2a N SIZE SEED [faults]: frames the kernel must encrypt; drop acts before our decryptor */
static int
cmd_k2a(char **argv, int argc)
{
	struct k2a_run r;
	u32 i, lost = 0;
	long rc;

	if (argc < 4 || !keys_set || slave < 0)
		return !keys_set || slave < 0 ? EBADF : EINVAL;
	memset(&r, 0, sizeof(r));
	r.n = (u32)num(argv[1]);
	r.size = (u32)num(argv[2]);
	r.seed = (u32)num(argv[3]);
	r.faults = argv + 4;
	r.nfaults = argc - 4;
	if (r.n >= sizeof(marks) || r.size + 8 > FRAME_MAX)
		return EINVAL;
	for (i = 0; i < r.n; i++) {
		size_t len = make_payload(pkt2 + 2, r.seed, i, r.size);
		int tries;

		pkt2[0] = 0xff;
		pkt2[1] = 0x03;
		marks[i] = 'x';
		for (tries = 0; (rc = sc3(SYS_write, slave, pkt2, len + 2)) == -55 && tries < 100; tries++)
			k2a_collect(&r, 20);	/* ENOBUFS: the interface queue is full; let it drain */
		if (rc < 0)
			return (int)-rc;
		if (i % BATCH == BATCH - 1)
			k2a_collect(&r, 0);
	}
	k2a_collect(&r, 400);
	for (i = 0; i < r.n; i++)
		marks[i] == '.' ? r.ok++ : lost++;
	put(". ok=");
	putnum(r.ok);
	put(" lost=");
	putnum(lost);
	put(" garbled=");
	putnum(r.bad);
	put(" errors=");
	putnum(r.errs);
	put(" resets_sent=");
	putnum(resets_sent);
	put(" marks=");
	marks[r.n] = 0;
	put((const char *)marks);
	put("\n");
	return 0;
}

/* fuzz N SEED: malformed MPPE frames (random bits, counts, lengths 0..1600) at the kernel */
static int
cmd_fuzz(char **argv, int argc)
{
	u32 n = (u32)num(argv[1]), i, k, len;

	if (argc < 3 || slave < 0)
		return slave < 0 ? EBADF : EINVAL;
	rng = (u32)num(argv[2]) | 1;
	for (i = 0; i < n; i++) {
		len = rnd() % 4 == 0 ? rnd() % 8 : rnd() % 1600;
		pkt[0] = 0xff;
		pkt[1] = 0x03;
		pkt[2] = 0x00;
		pkt[3] = 0xfd;
		for (k = 0; k < len; k++)
			pkt[4 + k] = (u8)rnd();
		hdlc_send(pkt, len + 4);
		if (i % 64 == 63) {
			while (slave_read(rxframe, sizeof(rxframe), 0) >= 0)
				;
			handle_kernel_dc_error();
		}
	}
	while (slave_read(rxframe, sizeof(rxframe), 200) >= 0)
		;
	handle_kernel_dc_error();
	put(". sent=");
	putnum(n);
	put(" resets=");
	putnum(resets_seen);
	put("\n");
	return 0;
}

#define TRAFFIC_COMMANDS \
	{ "keys", cmd_keys }, { "ccpup", cmd_ccpup }, { "a2k", cmd_a2k }, { "k2a", cmd_k2a }, { "fuzz", cmd_fuzz },
