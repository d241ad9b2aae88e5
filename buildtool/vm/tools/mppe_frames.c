/*
 * mppe_frames: MPPE frames through the running kernel's ppp unit on a pty (ppp_async line discipline),
 * for fixtures and interop with other kernels (tests/fixtures/mppe/, docs/vm-netbsd.md).
 *
 * The tool plays pppd and the peer at once: a pty whose slave has the N_PPP line discipline, a channel
 * attached to a new unit, PPPIOCSCOMPRESS with the 22-byte CI_MPPE option (option + start key), CCP
 * brought up the way ppp_generic sees it (SC_CCP_OPEN, a Configure-Ack pppd sends starts the compressor,
 * one the peer sends starts the decompressor, SC_CCP_UP). It speaks async HDLC (RFC 1662) on the master.
 *
 *   mppe_frames encrypt OPT PLAIN...   each PLAIN (hex: PPP protocol + payload) written on the unit; prints
 *                                      "frame HEX" per plaintext: what the kernel sent on the wire,
 *                                      address/control onwards, FCS checked and stripped
 *   mppe_frames decrypt OPT FRAME...   each FRAME (hex, address/control onwards) written on the wire; prints
 *                                      "plain HEX" (protocol + payload the unit's reader got) or "plain none"
 *   mppe_frames bench OPT N SIZE       N frames of SIZE payload bytes each way (both directions keyed with
 *                                      OPT): prints "bench n=N size=SIZE k2w_fps=.. w2k_fps=.. ok=.."
 *                                      (k2w: the kernel encrypts; w2k: it decrypts; timed in here)
 *
 * Frames must carry a protocol Linux's ppp_mppe encrypts (0x0021-0x00fa; it sends others in clear) and
 * ppp_generic hands to the unit's reader (pppd's path) instead of the network stack: the bench uses 0x0031. Exit status 0 when it got as far as printing, 2 with "mppe_frames: error:" otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/ppp-ioctl.h>

#define N_PPP_DISC 3
#define CCP_PROTO 0x80fd
#define CCP_CONFACK 2
#define FRAME_MAX 4096

static int master = -1, slave = -1, chan_fd = -1, unit_fd = -1;

static int fail(const char *step)
{
	printf("mppe_frames: error: %s: %s\n", step, strerror(errno));
	return 2;
}

static long unhex(const char *s, unsigned char *dst, size_t max)
{
	size_t n = 0;
	unsigned int b;

	while (s[0] && s[1]) {
		if (n >= max || sscanf(s, "%2x", &b) != 1)
			return -1;
		dst[n++] = (unsigned char)b;
		s += 2;
	}
	return *s ? -1 : (long)n;
}

static void puthex(const char *tag, const unsigned char *p, size_t n)
{
	size_t i;

	fputs(tag, stdout);
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

/* --- async HDLC on the master ---------------------------------------------------------------- */
static unsigned short fcstab[256];

static void fcs_init(void)
{
	unsigned int b, v;
	int i;

	for (b = 0; b < 256; b++) {
		for (v = b, i = 0; i < 8; i++)
			v = v & 1 ? (v >> 1) ^ 0x8408 : v >> 1;
		fcstab[b] = (unsigned short)v;
	}
}

static unsigned short fcs16(unsigned short fcs, const unsigned char *p, size_t n)
{
	while (n--)
		fcs = (unsigned short)((fcs >> 8) ^ fcstab[(fcs ^ *p++) & 0xff]);
	return fcs;
}

static int hdlc_send(const unsigned char *p, size_t n)
{
	static unsigned char wire[2 * FRAME_MAX + 8];
	unsigned short fcs = (unsigned short)~fcs16(0xffff, p, n);
	size_t w = 0, i;
	ssize_t rc;

	wire[w++] = 0x7e;
	for (i = 0; i < n + 2; i++) {
		unsigned char c = i < n ? p[i] : (unsigned char)(i == n ? fcs & 0xff : fcs >> 8);

		if (c == 0x7e || c == 0x7d || c < 0x20) {
			wire[w++] = 0x7d;
			c ^= 0x20;
		}
		wire[w++] = c;
	}
	wire[w++] = 0x7e;
	for (i = 0; i < w; i += (size_t)rc)
		if ((rc = write(master, wire + i, w - i)) < 0)
			return -1;
	return 0;
}

/* One frame from the master within ms (FCS checked and stripped): its length, 0 on timeout */
static long hdlc_recv(unsigned char *dst, size_t max, int ms)
{
	static unsigned char raw[8192], frame[FRAME_MAX + 2];
	static size_t raw_len, raw_pos, flen;
	static int esc;
	struct pollfd pfd = { .fd = master, .events = POLLIN };
	ssize_t rc;

	for (;;) {
		while (raw_pos < raw_len) {
			unsigned char c = raw[raw_pos++];

			if (c == 0x7e) {
				size_t n = flen;

				flen = 0;
				esc = 0;
				if (n < 4 || fcs16(0xffff, frame, n) != 0xf0b8)
					continue;
				n = n - 2 > max ? max : n - 2;
				memcpy(dst, frame, n);
				return (long)n;
			}
			if (c == 0x7d) {
				esc = 1;
				continue;
			}
			if (esc)
				c ^= 0x20, esc = 0;
			if (flen < sizeof(frame))
				frame[flen++] = c;
		}
		if (poll(&pfd, 1, ms) <= 0)
			return 0;
		if ((rc = read(master, raw, sizeof(raw))) <= 0)
			return 0;
		raw_len = (size_t)rc;
		raw_pos = 0;
	}
}

/* What the unit's reader (pppd) gets within ms: protocol + payload; -1 on timeout */
static long unit_recv(unsigned char *dst, size_t max, int ms)
{
	struct pollfd pfd = { .fd = unit_fd, .events = POLLIN };

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	return read(unit_fd, dst, max);
}

/* --- the unit ------------------------------------------------------------------------------- */
static int open_unit(void)
{
	struct termios t;
	int disc = N_PPP_DISC, chan = -1, unit = -1, mru = 2000;

	if ((master = posix_openpt(O_RDWR | O_NOCTTY)) < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		return fail("posix_openpt");
	if ((slave = open(ptsname(master), O_RDWR | O_NOCTTY)) < 0)
		return fail("open pty slave");
	tcgetattr(slave, &t);
	cfmakeraw(&t);
	if (tcsetattr(slave, TCSANOW, &t) < 0 || tcgetattr(master, &t) < 0)
		return fail("tcsetattr");
	cfmakeraw(&t);
	tcsetattr(master, TCSANOW, &t);
	if (ioctl(slave, TIOCSETD, &disc) < 0)
		return fail("TIOCSETD N_PPP (is ppp_async loaded?)");
	if (ioctl(slave, PPPIOCGCHAN, &chan) < 0)
		return fail("PPPIOCGCHAN");
	if ((chan_fd = open("/dev/ppp", O_RDWR)) < 0 || (unit_fd = open("/dev/ppp", O_RDWR)) < 0)
		return fail("open /dev/ppp");
	if (ioctl(chan_fd, PPPIOCATTCHAN, &chan) < 0)
		return fail("PPPIOCATTCHAN");
	if (ioctl(unit_fd, PPPIOCNEWUNIT, &unit) < 0)
		return fail("PPPIOCNEWUNIT");
	if (ioctl(chan_fd, PPPIOCCONNECT, &unit) < 0)
		return fail("PPPIOCCONNECT");
	if (ioctl(chan_fd, PPPIOCSMRU, &mru) < 0 || ioctl(unit_fd, PPPIOCSMRU, &mru) < 0)
		return fail("PPPIOCSMRU");
	return 0;
}

static size_t ccp_confack(unsigned char *f, const unsigned char *opt)
{
	f[0] = CCP_PROTO >> 8;
	f[1] = CCP_PROTO & 0xff;
	f[2] = CCP_CONFACK;
	f[3] = 1;
	f[4] = 0;
	f[5] = 10;
	memcpy(f + 6, opt, 6);
	return 12;
}

/* PPPIOCSCOMPRESS (tx and/or rx) with the option, then CCP up; the flags must show the directions run */
static int mppe_up(const unsigned char *opt, long optlen, int tx, int rx)
{
	struct ppp_option_data d = { .ptr = (unsigned char *)opt, .length = (__u32)optlen };
	unsigned char f[64], w[64];
	int flags = SC_CCP_OPEN, want = (tx ? SC_COMP_RUN : 0) | (rx ? SC_DECOMP_RUN : 0);

	if (tx && (d.transmit = 1, ioctl(unit_fd, PPPIOCSCOMPRESS, &d) < 0))
		return fail("PPPIOCSCOMPRESS transmit");
	if (rx && (d.transmit = 0, ioctl(unit_fd, PPPIOCSCOMPRESS, &d) < 0))
		return fail("PPPIOCSCOMPRESS receive");
	if (ioctl(unit_fd, PPPIOCSFLAGS, &flags) < 0)
		return fail("PPPIOCSFLAGS");
	if (tx) {	/* pppd acks the peer's request: our compressor starts */
		if (write(unit_fd, f, ccp_confack(f, opt)) < 0)
			return fail("write CCP Configure-Ack on the unit");
		while (hdlc_recv(f, sizeof(f), 200) > 0)
			;
	}
	if (rx) {	/* the peer acks ours: our decompressor starts */
		w[0] = 0xff;
		w[1] = 0x03;
		if (hdlc_send(w, 2 + ccp_confack(w + 2, opt)) < 0)
			return fail("write CCP Configure-Ack on the wire");
		while (unit_recv(f, sizeof(f), 200) >= 0)
			;
	}
	flags = SC_CCP_OPEN | SC_CCP_UP;
	if (ioctl(unit_fd, PPPIOCSFLAGS, &flags) < 0 || ioctl(unit_fd, PPPIOCGFLAGS, &flags) < 0)
		return fail("PPPIOCSFLAGS/GFLAGS");
	if ((flags & want) != want) {
		errno = ENOENT;
		printf("mppe_frames: flags=0x%x\n", flags);
		return fail("compressor/decompressor not running after CCP up");
	}
	return 0;
}

static unsigned char buf[FRAME_MAX], buf2[FRAME_MAX];

static int cmd_encrypt(char **hex, int n)
{
	long len, got;
	int i;

	for (i = 0; i < n; i++) {
		if ((len = unhex(hex[i], buf, sizeof(buf))) < 2)
			return errno = EINVAL, fail("plaintext hex");
		if (write(unit_fd, buf, (size_t)len) < 0)
			return fail("write on the unit");
		got = hdlc_recv(buf2, sizeof(buf2), 1000);
		if (got > 0)
			puthex("frame ", buf2, (size_t)got);
		else
			puts("frame none");
	}
	return 0;
}

static int cmd_decrypt(char **hex, int n)
{
	long len, got;
	int i;

	for (i = 0; i < n; i++) {
		if ((len = unhex(hex[i], buf, sizeof(buf))) < 1)
			return errno = EINVAL, fail("frame hex");
		if (hdlc_send(buf, (size_t)len) < 0)
			return fail("write on the wire");
		got = unit_recv(buf2, sizeof(buf2), 1000);
		if (got >= 0)
			puthex("plain ", buf2, (size_t)got);
		else
			puts("plain none");
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BATCH 16	/* frames between two reads of the other side, as the NetBSD agent does */

static void payload(unsigned char *p, unsigned int i, size_t size)
{
	unsigned int x = i * 2654435761U + 1;
	size_t k;

	p[0] = 0x00;
	p[1] = 0x31;
	for (k = 0; k < size; k++)
		x ^= x << 13, x ^= x >> 17, x ^= x << 5, p[2 + k] = (unsigned char)x;
}

/* k2w: write N plaintexts on the unit, read N frames from the wire (kept); w2k: write them back on the
 * wire, read N plaintexts from the unit and compare. Both directions keyed alike, so they agree. */
static int cmd_bench(unsigned int n, size_t size)
{
	unsigned char *frames = malloc((size_t)n * (size + 8)), p[FRAME_MAX];
	size_t *lens = calloc(n, sizeof(size_t));
	unsigned int i, sent, got = 0, ok = 0, enc = 0;
	double t0, k2w, w2k;
	long len;

	if (!frames || !lens || size + 8 > FRAME_MAX)
		return errno = ENOMEM, fail("bench buffers");
	t0 = now();
	for (sent = 0; sent < n || got < sent;) {
		if (sent < n && sent - got < BATCH) {
			payload(p, sent, size);
			if (write(unit_fd, p, size + 2) < 0)
				return fail("write on the unit");
			sent++;
			continue;
		}
		if ((len = hdlc_recv(frames + (size_t)got * (size + 8), size + 8, 1000)) <= 0)
			break;
		enc += len > 4 && frames[(size_t)got * (size + 8) + 2] == 0x00 &&
		       frames[(size_t)got * (size + 8) + 3] == 0xfd;
		lens[got++] = (size_t)len;
	}
	k2w = now() - t0;
	t0 = now();
	for (i = 0, sent = 0; sent < got || i < sent;) {
		if (sent < got && sent - i < BATCH) {
			if (hdlc_send(frames + (size_t)sent * (size + 8), lens[sent]) < 0)
				return fail("write on the wire");
			sent++;
			continue;
		}
		if ((len = unit_recv(buf2, sizeof(buf2), 1000)) < 0)
			break;
		payload(p, i++, size);
		ok += (size_t)len == size + 2 && memcmp(buf2, p, size + 2) == 0;
	}
	w2k = now() - t0;
	printf("bench n=%u size=%zu frames=%u mppe=%u ok=%u k2w_s=%.3f w2k_s=%.3f k2w_fps=%.0f w2k_fps=%.0f\n", n, size,
	       got, enc, ok, k2w, w2k, got / k2w, i / w2k);
	free(frames);
	free(lens);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char opt[64];
	long optlen;
	int rc;

	if (argc < 3 || (optlen = unhex(argv[2], opt, sizeof(opt))) < 6) {
		fprintf(stderr, "usage: mppe_frames encrypt|decrypt OPT HEX... | bench OPT N SIZE\n");
		return 64;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fcs_init();
	if ((rc = open_unit()) != 0)
		return rc;
	if (strcmp(argv[1], "encrypt") == 0)
		rc = mppe_up(opt, optlen, 1, 0) ?: cmd_encrypt(argv + 3, argc - 3);
	else if (strcmp(argv[1], "decrypt") == 0)
		rc = mppe_up(opt, optlen, 0, 1) ?: cmd_decrypt(argv + 3, argc - 3);
	else if (strcmp(argv[1], "bench") == 0 && argc == 5)
		rc = mppe_up(opt, optlen, 1, 1) ?: cmd_bench((unsigned int)atoi(argv[3]), (size_t)atoi(argv[4]));
	else {
		fprintf(stderr, "mppe_frames: unknown command %s\n", argv[1]);
		return 64;
	}
	fflush(stdout);
	return rc;
}
