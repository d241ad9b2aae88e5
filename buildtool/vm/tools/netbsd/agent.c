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
 * buildtool's NetBSD test agent: /sbin/init of a NetBSD kernel booted under
 * QEMU, with no libc and no NetBSD userland.  It talks to the harness over the
 * console (com0): one command per line, "<token> <seq> <verb> <args>", and
 * answers with output lines (each starting with ". ", so no output line can
 * look like a kernel message) and a final "<token>-<seq>=<status>" line; the
 * status is 0 or an errno.  It links the portable MPPE core to play the PPP
 * peer on the master side of a pty whose slave has the PPP line discipline.
 *
 * NetBSD amd64 ABI: syscall number in rax, arguments in rdi rsi rdx r10 r8
 * r9, the carry flag set on error with the errno in rax.  The kernel runs an
 * ELF binary only if it carries the .note.netbsd.ident note.
 */

#include "mppe.h"

#ifndef NETBSD_VERSION
#error "build with -DNETBSD_VERSION=<__NetBSD_Version__ of the kernel>"
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

__asm__(".section .note.netbsd.ident,\"a\",@note\n"
    ".p2align 2\n.long 7\n.long 4\n.long 1\n.asciz \"NetBSD\"\n.p2align 2\n"
    ".long " STR(NETBSD_VERSION) "\n.previous\n");

__asm__(".text\n.globl _start\n_start:\n"
    "xor %rbp, %rbp\nand $-16, %rsp\ncall agent_main\n1: hlt\njmp 1b\n");

typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

/* --- system calls ------------------------------------------------------------------------- */
#define SYS_exit	1
#define SYS_read	3
#define SYS_write	4
#define SYS_open	5
#define SYS_close	6
#define SYS_ioctl	54
#define SYS___sysctl	202
#define SYS_reboot	208
#define SYS_poll	209
#define SYS_modctl	246
#define SYS___nanosleep50	430

static long
sc(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	unsigned char err;

	__asm__ volatile("syscall; setc %1"
	    : "+a"(n), "=r"(err), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8), "+r"(r9)
	    : : "rcx", "r11", "memory", "cc");
	return err ? -n : n;
}
#define sc1(n, a) sc((n), (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

#define O_RDWR		2
#define O_NONBLOCK	4
#define EINVAL		22
#define ENOENT		2
#define EBADF		9
#define E2BIG		7
#define ETIMEDOUT	60

#define IOC_OUT		0x40000000UL
#define IOC_IN		0x80000000UL
#define IOC(inout, g, n, len)	((inout) | (((len) & 0x1fffUL) << 16) | ((g) << 8) | (n))
#define IOR(g, n, len)	IOC(IOC_OUT, (unsigned long)(g), (n), (len))
#define IOW(g, n, len)	IOC(IOC_IN, (unsigned long)(g), (n), (len))

struct termios {
	u32 c_iflag, c_oflag, c_cflag, c_lflag;
	u8 c_cc[20];
	int c_ispeed, c_ospeed;
};
#define TIOCGETA	IOR('t', 19, sizeof(struct termios))
#define TIOCSETA	IOW('t', 20, sizeof(struct termios))
#define TIOCSETD	IOW('t', 27, sizeof(int))
#define PPPDISC		5
#define ECHO		0x00000008
#define ISIG		0x00000080
#define ICANON		0x00000100
#define ICRNL		0x00000100
#define IXON		0x00000200
#define CS8		0x00000300
#define CSIZE		0x00000300
#define PARENB		0x00001000
#define VMIN		16
#define VTIME		17

struct ppp_option_data {
	u8 *ptr;
	u32 length;
	int transmit;
};
#define PPPIOCGUNIT	IOR('t', 86, sizeof(int))
#define PPPIOCGFLAGS	IOR('t', 90, sizeof(int))
#define PPPIOCSFLAGS	IOW('t', 89, sizeof(int))
#define PPPIOCSCOMPRESS	IOW('t', 77, sizeof(struct ppp_option_data))
#define PPPIOCSMRU	IOW('t', 82, sizeof(int))
#define PPPIOCSMTU	IOW('t', 72, sizeof(int))
#define PPPIOCSASYNCMAP	IOW('t', 87, sizeof(int))
#define PPPIOCSRASYNCMAP IOW('t', 84, sizeof(int))
#define SC_CCP_OPEN	0x00000040
#define SC_CCP_UP	0x00000080
#define SC_COMP_RUN	0x00001000
#define SC_DECOMP_RUN	0x00002000
#define SC_DC_ERROR	0x00004000
#define SC_DC_FERROR	0x00008000

#define MODCTL_LOAD	0
#define MODCTL_UNLOAD	1
#define MODCTL_STAT	4
struct modctl_load {
	const char *ml_filename;
	int ml_flags;
	const char *ml_props;
	size_t ml_propslen;
};
struct iovec {
	void *iov_base;
	size_t iov_len;
};
struct modstat {
	char ms_name[32];
	unsigned long ms_addr;
	int ms_source, ms_class;
	u32 ms_size, ms_refcnt, ms_flags, ms_reqoffset;
};

struct pollfd {
	int fd;
	short events, revents;
};
#define POLLIN	0x0001

struct timespec {
	long tv_sec, tv_nsec;
};

/* --- freestanding helpers (the compiler may call the memory functions itself) ----------- */
void *
memcpy(void *d, const void *s, unsigned long n)
{
	u8 *dp = d;
	const u8 *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *
memset(void *d, int c, unsigned long n)
{
	u8 *dp = d;

	while (n--)
		*dp++ = (u8)c;
	return d;
}

int
memcmp(const void *a, const void *b, unsigned long n)
{
	const u8 *ap = a, *bp = b;

	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap - *bp;
	return 0;
}

static size_t
slen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int
seq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int console = -1;

static void
out(const char *s)
{
	sc3(SYS_write, console, s, slen(s));
}

static char outbuf[8192];
static size_t outlen;

static void
put(const char *s)
{
	size_t n = slen(s);

	if (outlen + n >= sizeof(outbuf) - 1) {
		sc3(SYS_write, console, outbuf, outlen);
		outlen = 0;
	}
	memcpy(outbuf + outlen, s, n);
	outlen += n;
}

static void
flush(void)
{
	if (outlen)
		sc3(SYS_write, console, outbuf, outlen);
	outlen = 0;
}

static void
putnum(unsigned long v)
{
	char b[24];
	int i = 23;

	b[i] = 0;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	put(b + i);
}

static void
putsnum(long v)
{
	if (v < 0) {
		put("-");
		putnum((unsigned long)-v);
	} else
		putnum((unsigned long)v);
}

static void
puthex(const u8 *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char b[3];
	size_t i;

	b[2] = 0;
	for (i = 0; i < n; i++) {
		b[0] = digits[p[i] >> 4];
		b[1] = digits[p[i] & 15];
		put(b);
	}
}

/* One output line: ". " + text + newline */
static void
line(const char *a, const char *b)
{
	put(". ");
	put(a);
	if (b)
		put(b);
	put("\n");
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex string -> bytes; returns the length or -1 */
static long
unhex(const char *s, u8 *dst, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1]) {
		int hi = hexval(s[0]), lo = hexval(s[1]);

		if (hi < 0 || lo < 0 || n >= max)
			return -1;
		dst[n++] = (u8)(hi << 4 | lo);
		s += 2;
	}
	return *s ? -1 : (long)n;
}

static unsigned long
num(const char *s)
{
	unsigned long v = 0;

	if (s == 0)
		return 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long)(*s++ - '0');
	return v;
}

void
mppe_os_log(int unit, const char *msg)
{
	(void)unit;
	line("core: ", msg);
}

static void
msleep(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	sc2(SYS___nanosleep50, &ts, 0);
}

/* --- modules -------------------------------------------------------------------------------- */
static int
cmd_load(char **argv, int argc)
{
	struct modctl_load ml;
	long rc;

	if (argc < 2)
		return EINVAL;
	memset(&ml, 0, sizeof(ml));
	ml.ml_filename = argv[1];
	rc = sc2(SYS_modctl, MODCTL_LOAD, &ml);
	return rc < 0 ? (int)-rc : 0;
}

static int
cmd_unload(char **argv, int argc)
{
	long rc;

	if (argc < 2)
		return EINVAL;
	rc = sc2(SYS_modctl, MODCTL_UNLOAD, argv[1]);
	return rc < 0 ? (int)-rc : 0;
}

static u8 statbuf[65536];

/* stat NAME: ". loaded refcnt=N source=S" or status ENOENT.  The kernel fills the buffer with an int
 * count, the modstat array right after it (unaligned), then the "required" strings. */
static int
cmd_stat(char **argv, int argc)
{
	struct iovec iov;
	struct modstat ms;
	int count, i;
	long rc;

	if (argc < 2)
		return EINVAL;
	iov.iov_base = statbuf;
	iov.iov_len = sizeof(statbuf);
	rc = sc2(SYS_modctl, MODCTL_STAT, &iov);
	if (rc < 0)
		return (int)-rc;
	memcpy(&count, statbuf, sizeof(count));
	for (i = 0; i < count && sizeof(int) + (size_t)(i + 1) * sizeof(ms) <= sizeof(statbuf); i++) {
		memcpy(&ms, statbuf + sizeof(int) + (size_t)i * sizeof(ms), sizeof(ms));
		if (!seq(ms.ms_name, argv[1]))
			continue;
		put(". loaded refcnt=");
		putnum(ms.ms_refcnt);
		put(" source=");
		putnum((unsigned long)ms.ms_source);
		put("\n");
		return 0;
	}
	return ENOENT;
}

/* --- the PPP unit on a pty ------------------------------------------------------------------ */
static int master = -1, slave = -1, ppp_unit = -1;

static int
cmd_open(char **argv, int argc)
{
	int disc = PPPDISC, unit = -1, mru = 65000, map = 0;	/* PPP_MAXMRU */
	struct termios t;
	long rc;

	(void)argv;
	(void)argc;
	if (master >= 0)
		return 0;
	rc = sc2(SYS_open, "/dev/ptyp0", O_RDWR);
	if (rc < 0)
		return (int)-rc;
	master = (int)rc;
	rc = sc2(SYS_open, "/dev/ttyp0", O_RDWR);
	if (rc < 0)
		return (int)-rc;
	slave = (int)rc;
	/* raw 8-bit line, as pppd sets it */
	if ((rc = sc3(SYS_ioctl, slave, TIOCGETA, &t)) < 0)
		return (int)-rc;
	t.c_iflag = 0;
	t.c_oflag = 0;
	t.c_lflag = 0;
	t.c_cflag = (t.c_cflag & ~(u32)(CSIZE | PARENB)) | CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if ((rc = sc3(SYS_ioctl, slave, TIOCSETA, &t)) < 0)
		return (int)-rc;
	if ((rc = sc3(SYS_ioctl, master, TIOCGETA, &t)) >= 0) {
		t.c_iflag = t.c_oflag = t.c_lflag = 0;
		sc3(SYS_ioctl, master, TIOCSETA, &t);
	}
	if ((rc = sc3(SYS_ioctl, slave, TIOCSETD, &disc)) < 0)
		return (int)-rc;
	if ((rc = sc3(SYS_ioctl, slave, PPPIOCGUNIT, &unit)) < 0)
		return (int)-rc;
	sc3(SYS_ioctl, slave, PPPIOCSMRU, &mru);
	sc3(SYS_ioctl, slave, PPPIOCSASYNCMAP, &map);
	sc3(SYS_ioctl, slave, PPPIOCSRASYNCMAP, &map);
	ppp_unit = unit;
	put(". unit=");
	putnum((unsigned long)unit);
	put("\n");
	return 0;
}

static int
cmd_close(char **argv, int argc)
{
	(void)argv;
	(void)argc;
	if (slave >= 0)
		sc1(SYS_close, slave);
	if (master >= 0)
		sc1(SYS_close, master);
	slave = master = ppp_unit = -1;
	return 0;
}

static u8 optbuf[256];

/* comp HEX t|r [LEN]: PPPIOCSCOMPRESS with the option bytes, transmit or receive direction */
static int
cmd_comp(char **argv, int argc)
{
	struct ppp_option_data od;
	long n, rc;

	if (argc < 3 || slave < 0)
		return slave < 0 ? EBADF : EINVAL;
	n = unhex(argv[1], optbuf, sizeof(optbuf));
	if (n < 0)
		return EINVAL;
	od.ptr = optbuf;
	od.length = (u32)(argc > 3 ? num(argv[3]) : (unsigned long)n);
	od.transmit = argv[2][0] == 't';
	rc = sc3(SYS_ioctl, slave, PPPIOCSCOMPRESS, &od);
	return rc < 0 ? (int)-rc : 0;
}

/* flags [VALUE]: print the unit's flags, setting them first when a value is given */
static int
cmd_flags(char **argv, int argc)
{
	int f;
	long rc;

	if (slave < 0)
		return EBADF;
	if (argc > 1) {
		f = (int)num(argv[1]);
		if ((rc = sc3(SYS_ioctl, slave, PPPIOCSFLAGS, &f)) < 0)
			return (int)-rc;
	}
	if ((rc = sc3(SYS_ioctl, slave, PPPIOCGFLAGS, &f)) < 0)
		return (int)-rc;
	put(". flags=");
	putnum((u32)f);
	put("\n");
	return 0;
}

/* mtu N: the unit's interface MTU, set as pppd sets it (SIOCSIFMTU on an inet socket); it bounds the
 * frames pppd may write on the slave */
struct ifreq_mtu {
	char ifr_name[16];
	union {
		int ifru_mtu;
		u8 ifru_space[128];	/* struct sockaddr_storage: the union's size */
		void *align;
	} u;
};
#define SIOCSIFMTU	IOW('i', 127, sizeof(struct ifreq_mtu))
#define SYS___socket30	394

static int
cmd_mtu(char **argv, int argc)
{
	struct ifreq_mtu ifr;
	long s, rc;

	if (argc < 2 || ppp_unit < 0)
		return ppp_unit < 0 ? EBADF : EINVAL;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "ppp", 3);
	ifr.ifr_name[3] = (char)('0' + ppp_unit % 10);
	ifr.u.ifru_mtu = (int)num(argv[1]);
	s = sc3(SYS___socket30, 2, 2, 0);	/* AF_INET, SOCK_DGRAM */
	if (s < 0)
		return (int)-s;
	rc = sc3(SYS_ioctl, s, SIOCSIFMTU, &ifr);
	sc1(SYS_close, s);
	return rc < 0 ? (int)-rc : 0;
}

/* --- async HDLC (RFC 1662) on the pty master --------------------------------------------- */
static u16 fcstab[256];

static void
fcs_init(void)
{
	u32 b, v;
	int i;

	for (b = 0; b < 256; b++) {
		v = b;
		for (i = 0; i < 8; i++)
			v = v & 1 ? (v >> 1) ^ 0x8408 : v >> 1;
		fcstab[b] = (u16)v;
	}
}

static u16
fcs16(u16 fcs, const u8 *p, size_t n)
{
	while (n--)
		fcs = (u16)((fcs >> 8) ^ fcstab[(fcs ^ *p++) & 0xff]);
	return fcs;
}

#define FRAME_MAX	70000
static u8 wirebuf[2 * FRAME_MAX + 16];

/* Frame `p` (address/control onwards) and write it to the master */
static int
hdlc_send(const u8 *p, size_t n)
{
	size_t w = 0, i;
	u16 fcs = (u16)~fcs16(0xffff, p, n);
	u8 tail[2];
	long rc;

	tail[0] = (u8)(fcs & 0xff);
	tail[1] = (u8)(fcs >> 8);
	wirebuf[w++] = 0x7e;
	for (i = 0; i < n + 2; i++) {
		u8 c = i < n ? p[i] : tail[i - n];

		if (c == 0x7e || c == 0x7d || c < 0x20) {
			wirebuf[w++] = 0x7d;
			c ^= 0x20;
		}
		wirebuf[w++] = c;
	}
	wirebuf[w++] = 0x7e;
	for (i = 0; i < w; i += (size_t)rc) {
		rc = sc3(SYS_write, master, wirebuf + i, w - i);
		if (rc < 0)
			return (int)-rc;
	}
	return 0;
}

static u8 rxraw[8192];
static size_t rxraw_len, rxraw_pos;
static u8 rxframe[FRAME_MAX];
static size_t rxframe_len;
static int rxescape;
static u32 rx_badfcs;

/* Read one frame (FCS checked and stripped) from the master within `ms`; length, 0 on timeout */
static long
hdlc_recv(u8 *dst, size_t max, long ms)
{
	struct pollfd pfd;
	long rc;

	for (;;) {
		while (rxraw_pos < rxraw_len) {
			u8 c = rxraw[rxraw_pos++];

			if (c == 0x7e) {
				size_t n = rxframe_len;

				rxframe_len = 0;
				rxescape = 0;
				if (n < 4)
					continue;
				if (fcs16(0xffff, rxframe, n) != 0xf0b8) {
					rx_badfcs++;
					continue;
				}
				n -= 2;
				if (n > max)
					n = max;
				memcpy(dst, rxframe, n);
				return (long)n;
			}
			if (c == 0x7d) {
				rxescape = 1;
				continue;
			}
			if (rxescape) {
				c ^= 0x20;
				rxescape = 0;
			}
			if (rxframe_len < sizeof(rxframe))
				rxframe[rxframe_len++] = c;
		}
		pfd.fd = master;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = sc3(SYS_poll, &pfd, 1, ms);
		if (rc <= 0)
			return 0;
		rc = sc3(SYS_read, master, rxraw, sizeof(rxraw));
		if (rc <= 0)
			return 0;
		rxraw_len = (size_t)rc;
		rxraw_pos = 0;
	}
}

/* raw HEX: send one frame (address/control onwards) as given */
static u8 pkt[FRAME_MAX];
static u8 pkt2[FRAME_MAX];

static int
cmd_raw(char **argv, int argc)
{
	long n;

	if (argc < 2 || master < 0)
		return master < 0 ? EBADF : EINVAL;
	n = unhex(argv[1], pkt, sizeof(pkt));
	if (n < 0)
		return EINVAL;
	return hdlc_send(pkt, (size_t)n);
}

/* recv [MS]: print each frame that arrives within MS (default 300) as hex */
static int
cmd_recv(char **argv, int argc)
{
	long n, ms = argc > 1 ? (long)num(argv[1]) : 300;
	int count = 0;

	if (master < 0)
		return EBADF;
	while ((n = hdlc_recv(pkt, sizeof(pkt), ms)) > 0) {
		put(". frame ");
		puthex(pkt, (size_t)(n > 64 ? 64 : n));
		put(" len=");
		putnum((unsigned long)n);
		put("\n");
		count++;
	}
	put(". frames=");
	putnum((unsigned long)count);
	put("\n");
	return 0;
}

/* --- dispatch ------------------------------------------------------------------------------- */
struct command {
	const char *name;
	int (*fn)(char **, int);
};

static int
cmd_ping(char **argv, int argc)
{
	(void)argv;
	(void)argc;
	line("pong", 0);
	return 0;
}

/* uname [-r]: the kernel's release (kern.osrelease), as `uname -r` prints it */
static int
cmd_uname(char **argv, int argc)
{
	int mib[2] = { 1, 2 };	/* CTL_KERN, KERN_OSRELEASE */
	char rel[64];
	size_t len = sizeof(rel) - 1;
	long rc;

	(void)argv;
	(void)argc;
	rc = sc(SYS___sysctl, (long)mib, 2, (long)rel, (long)&len, 0, 0);
	if (rc < 0)
		return (int)-rc;
	rel[len < sizeof(rel) ? len : sizeof(rel) - 1] = 0;
	line(rel, 0);
	return 0;
}

static int
cmd_sleep(char **argv, int argc)
{
	msleep(argc > 1 ? (long)num(argv[1]) : 100);
	return 0;
}

static int
cmd_reboot(char **argv, int argc)
{
	(void)argv;
	(void)argc;
	flush();
	sc2(SYS_reboot, 0, 0);
	return EINVAL;
}

static int
cmd_hang(char **argv, int argc)
{
	(void)argv;
	(void)argc;
	for (;;)
		msleep(1000);
}

#include "traffic.c"
#include "ip.c"
#include "frames.c"

static const struct command commands[] = {
	{ "ping", cmd_ping }, { "uname", cmd_uname }, { "sleep", cmd_sleep }, { "reboot", cmd_reboot }, { "hang", cmd_hang },
	{ "load", cmd_load }, { "unload", cmd_unload }, { "stat", cmd_stat },
	{ "open", cmd_open }, { "close", cmd_close }, { "comp", cmd_comp }, { "flags", cmd_flags }, { "mtu", cmd_mtu },
	{ "raw", cmd_raw }, { "recv", cmd_recv },
	TRAFFIC_COMMANDS
	IP_COMMANDS
	FRAMES_COMMANDS
	{ 0, 0 }
};

#define MAXARGS	16
static char cmdline[65536];

static int
split(char *s, char **argv)
{
	int argc = 0;

	while (*s && argc < MAXARGS) {
		while (*s == ' ')
			*s++ = 0;
		if (!*s)
			break;
		argv[argc++] = s;
		while (*s && *s != ' ')
			s++;
	}
	return argc;
}

static void
run_line(char *s)
{
	char *argv[MAXARGS];
	int argc = split(s, argv), i, status = EINVAL;

	if (argc < 3)
		return;	/* noise on the line: not a command */
	for (i = 0; commands[i].name; i++)
		if (seq(commands[i].name, argv[2])) {
			status = commands[i].fn(argv + 2, argc - 2);
			break;
		}
	if (!commands[i].name)
		line("unknown command ", argv[2]);
	put(argv[0]);
	put("-");
	put(argv[1]);
	put("=");
	putsnum(status);
	put("\n");
	flush();
}

void agent_main(void) __attribute__((noreturn));

void
agent_main(void)
{
	struct termios t;
	size_t n = 0;
	long rc;
	char c;

	console = (int)sc2(SYS_open, "/dev/console", O_RDWR);
	if (console < 0)
		sc1(SYS_exit, 1);
	if (sc3(SYS_ioctl, console, TIOCGETA, &t) >= 0) {
		t.c_lflag &= ~(u32)(ECHO | ICANON | ISIG);
		t.c_iflag &= ~(u32)(ICRNL | IXON);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		sc3(SYS_ioctl, console, TIOCSETA, &t);
	}
	fcs_init();
	out("\nbuildtool-netbsd-agent-ready " STR(NETBSD_VERSION) "\n");
	for (;;) {
		rc = sc3(SYS_read, console, &c, 1);
		if (rc <= 0) {
			msleep(10);
			continue;
		}
		if (c == '\r' || c == '\n') {
			cmdline[n] = 0;
			run_line(cmdline);
			n = 0;
		} else if (n < sizeof(cmdline) - 1)
			cmdline[n++] = c;
	}
}
