/*-
 * Copyright (c) 2026 The buildtool project contributors.
 * SPDX-License-Identifier: BSD-2-Clause (full text in agent.c)
 */

/*
 * Given frames in and out of the kernel, included by agent.c: the fixtures of
 * tests/fixtures/mppe/ (frames another kernel's MPPE made, with their keys).
 * Long frames arrive in pieces (a console line of several KB could overrun the
 * tty's input queue, TTYHOG, while the agent is busy; not measured, avoided),
 * so each verb takes its bytes from a staging buffer:
 *
 *   chunk HEX      append HEX to the staged bytes
 *   inject [HEX]   append HEX, write the staged bytes (a frame, address/control
 *                  onwards) on the master; print what the slave's reader got
 *                  (". got HEX" or ". got none"); clear the stage
 *   emit [HEX]     append HEX, write the staged bytes (PPP protocol + payload)
 *                  on the slave after ff 03 as pppd does; print the frame the
 *                  kernel sent on the wire (". frame HEX" or ". frame none")
 */

static u8 stage[FRAME_MAX];
static size_t stage_len;

static int
stage_hex(char **argv, int argc)
{
	long n;

	if (argc < 2)
		return 0;
	n = unhex(argv[1], stage + stage_len, sizeof(stage) - stage_len);
	if (n < 0) {
		stage_len = 0;
		return EINVAL;
	}
	stage_len += (size_t)n;
	return 0;
}

static int
cmd_chunk(char **argv, int argc)
{
	return stage_hex(argv, argc);
}

static int
cmd_inject(char **argv, int argc)
{
	long n;
	int rc;

	if (master < 0)
		return EBADF;
	if ((rc = stage_hex(argv, argc)) != 0)
		return rc;
	while (slave_read(rxframe, sizeof(rxframe), 0) >= 0)
		;
	rc = hdlc_send(stage, stage_len);
	stage_len = 0;
	if (rc)
		return rc;
	n = slave_read(rxframe, sizeof(rxframe), 1000);
	put(". got ");
	if (n < 0)
		put("none");
	else
		puthex(rxframe, (size_t)n);
	put("\n");
	return 0;
}

static int
cmd_emit(char **argv, int argc)
{
	long n, rc;

	if (slave < 0)
		return EBADF;
	if ((rc = stage_hex(argv, argc)) != 0)
		return (int)rc;
	while (hdlc_recv(pkt, sizeof(pkt), 0) > 0)
		;
	pkt2[0] = 0xff;
	pkt2[1] = 0x03;
	memcpy(pkt2 + 2, stage, stage_len);
	rc = sc3(SYS_write, slave, pkt2, stage_len + 2);
	stage_len = 0;
	if (rc < 0)
		return (int)-rc;
	n = hdlc_recv(pkt, sizeof(pkt), 1000);
	put(". frame ");
	if (n <= 0)
		put("none");
	else
		puthex(pkt, (size_t)n);
	put("\n");
	return 0;
}

#define SYS___clock_gettime50	427
#define CLOCK_MONOTONIC	3

static unsigned long
usec_now(void)
{
	struct timespec ts;

	sc2(SYS___clock_gettime50, CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000000UL + (unsigned long)ts.tv_nsec / 1000UL;
}

static u8 benchbuf[1 << 17];

/*
 * bench N SIZE: frames per second through the kernel, timed here as Linux's
 * mppe_frames times it: N frames of SIZE bytes encrypted by the agent beforehand
 * (untimed), then written on the master in batches of 16 with the slave read
 * back and compared (kernel decrypts); then N plaintexts written on the slave,
 * the frames read back from the master (kernel encrypts).  Leaves the agent's
 * states out of step with the kernel's: bring the unit up again afterwards.
 */
static int
cmd_bench(char **argv, int argc)
{
	u32 n = (u32)num(argv[1]), size = (u32)num(argv[2]), stride = size + 8, i, sent, got, ok = 0;
	unsigned long t0, dec_us, enc_us;
	mppe_size olen;
	long r;

	if (argc < 3 || !keys_set || slave < 0)
		return !keys_set || slave < 0 ? EBADF : EINVAL;
	if ((unsigned long)n * stride > sizeof(benchbuf) || size + 8 > FRAME_MAX)
		return EINVAL;
	for (i = 0; i < n; i++) {
		size_t len = make_payload(pkt2, 1, i, size);
		u8 *f = benchbuf + (size_t)i * stride;

		f[0] = 0xff, f[1] = 0x03, f[2] = 0x00, f[3] = 0xfd;
		if (mppe_compress(&a2k, pkt2, len, f + 4, stride - 4, &olen) != MPPE_OK)
			return E2BIG;
	}
	t0 = usec_now();
	for (sent = 0, got = 0; sent < n || got < sent;) {
		if (sent < n && sent - got < BATCH) {
			hdlc_send(benchbuf + (size_t)sent * stride, size + 8);
			sent++;
			continue;
		}
		if ((r = slave_read(rxframe, sizeof(rxframe), 1000)) < 0)
			break;
		ok += matches(rxframe, r, 1, got++, size);
	}
	dec_us = usec_now() - t0;
	t0 = usec_now();
	for (sent = 0, i = 0; sent < n || i < sent;) {
		if (sent < n && sent - i < BATCH) {
			size_t len = make_payload(pkt2 + 2, 2, sent, size);

			pkt2[0] = 0xff, pkt2[1] = 0x03;
			if ((r = sc3(SYS_write, slave, pkt2, len + 2)) < 0)
				return (int)-r;
			sent++;
			continue;
		}
		if (hdlc_recv(pkt, sizeof(pkt), 1000) <= 0)
			break;
		i++;
	}
	enc_us = usec_now() - t0;
	put(". bench n=");
	putnum(n);
	put(" decrypted=");
	putnum(got);
	put(" ok=");
	putnum(ok);
	put(" decrypt_us=");
	putnum(dec_us);
	put(" encrypted=");
	putnum(i);
	put(" encrypt_us=");
	putnum(enc_us);
	put("\n");
	return 0;
}

#define FRAMES_COMMANDS \
	{ "chunk", cmd_chunk }, { "inject", cmd_inject }, { "emit", cmd_emit }, { "bench", cmd_bench },
