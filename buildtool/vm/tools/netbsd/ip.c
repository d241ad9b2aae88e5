/*-
 * Copyright (c) 2026 The buildtool project contributors.
 * SPDX-License-Identifier: BSD-2-Clause (full text in agent.c)
 */

/*
 * IP traffic through the ppp unit, included by agent.c after traffic.c.  The
 * kernel's side is a UDP socket (the kernel's IP stack fragments and
 * reassembles); the peer's side is the agent, which builds and fragments IPv4
 * datagrams itself (RFC 791) and reassembles what the kernel sends, all of it
 * MPPE-encrypted on the wire by our core and the kernel's ppp_mppe.
 */

#define SYS_bind	104
#define SYS_sendto	133
#define SYS_recvfrom	29
#define SYS_setsockopt	105
#define SOL_SOCKET	0xffff
#define SO_SNDBUF	0x1001
#define SO_RCVBUF	0x1002
#define PPP_IP		0x0021
#define UDP_PORT	7777
#define IP_MTU		1500	/* the unit's MTU while the IP scenarios run */

struct sockaddr_in {
	u8 sin_len, sin_family;
	u16 sin_port;
	u32 sin_addr;
	u8 sin_zero[8];
};

struct ifaliasreq_in {
	char ifra_name[16];
	struct sockaddr_in ifra_addr, ifra_dstaddr, ifra_mask;
};

struct ifreq_flags {
	char ifr_name[16];
	union {
		short flags;
		u8 space[128];
		void *align;
	} u;
};

struct npioctl {
	int protocol;
	int mode;
};

#define SIOCAIFADDR	IOW('i', 26, sizeof(struct ifaliasreq_in))
#define SIOCSIFFLAGS	IOW('i', 16, sizeof(struct ifreq_flags))
#define SIOCGIFFLAGS	IOC(IOC_IN | IOC_OUT, (unsigned long)'i', 17, sizeof(struct ifreq_flags))
#define PPPIOCSNPMODE	IOW('t', 75, sizeof(struct npioctl))
#define IFF_UP		0x0001

static u32 ip_local, ip_peer;	/* network byte order */
static int udp_sock = -1;

static u16
htons16(u16 v)
{
	return (u16)((v >> 8) | (v << 8));
}

static u32
parse_ip(const char *s)
{
	u32 a = 0;
	int i;

	for (i = 0; i < 4; i++) {
		a |= (u32)num(s) << (8 * i);	/* byte i of the address, in memory order */
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s == '.')
			s++;
	}
	return a;
}

static void
ifname(char *name)
{
	memcpy(name, "ppp", 3);
	name[3] = (char)('0' + ppp_unit % 10);
}

static void
sin_set(struct sockaddr_in *sin, u32 addr, u16 port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_len = sizeof(*sin);
	sin->sin_family = 2;	/* AF_INET */
	sin->sin_port = htons16(port);
	sin->sin_addr = addr;
}

/* ifup LOCAL PEER: address the unit as pppd's IPCP would, interface up, IP passed (NPMODE_PASS), MTU
 * IP_MTU, and a UDP socket bound to LOCAL:UDP_PORT */
static int
cmd_ifup(char **argv, int argc)
{
	struct ifaliasreq_in ifra;
	struct ifreq_flags ifr;
	struct npioctl np;
	struct sockaddr_in sin;
	char *mtu_argv[2];
	char mtu_text[8] = "1500";
	int bufsize;
	long s, rc;

	if (argc < 3 || ppp_unit < 0)
		return ppp_unit < 0 ? EBADF : EINVAL;
	ip_local = parse_ip(argv[1]);
	ip_peer = parse_ip(argv[2]);
	mtu_argv[0] = argv[0];
	mtu_argv[1] = mtu_text;
	if ((rc = cmd_mtu(mtu_argv, 2)) != 0)
		return (int)rc;
	s = sc3(SYS___socket30, 2, 2, 0);
	if (s < 0)
		return (int)-s;
	memset(&ifra, 0, sizeof(ifra));
	ifname(ifra.ifra_name);
	sin_set(&ifra.ifra_addr, ip_local, 0);
	sin_set(&ifra.ifra_dstaddr, ip_peer, 0);
	sin_set(&ifra.ifra_mask, 0xffffffffU, 0);
	if ((rc = sc3(SYS_ioctl, s, SIOCAIFADDR, &ifra)) < 0)
		goto out;
	memset(&ifr, 0, sizeof(ifr));
	ifname(ifr.ifr_name);
	if ((rc = sc3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr)) < 0)
		goto out;
	ifr.u.flags |= IFF_UP;
	if ((rc = sc3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr)) < 0)
		goto out;
	np.protocol = PPP_IP;
	np.mode = 0;	/* NPMODE_PASS */
	if ((rc = sc3(SYS_ioctl, slave, PPPIOCSNPMODE, &np)) < 0)
		goto out;
	if (udp_sock >= 0)
		sc1(SYS_close, udp_sock);
	udp_sock = (int)sc3(SYS___socket30, 2, 2, 0);
	if (udp_sock < 0) {
		rc = udp_sock;
		udp_sock = -1;
		goto out;
	}
	/* room for one 65507-byte datagram each way (the defaults hold about 9 and 40 KB) */
	bufsize = 2 * 65536;
	sc(SYS_setsockopt, udp_sock, SOL_SOCKET, SO_SNDBUF, (long)&bufsize, sizeof(bufsize), 0);
	sc(SYS_setsockopt, udp_sock, SOL_SOCKET, SO_RCVBUF, (long)&bufsize, sizeof(bufsize), 0);
	sin_set(&sin, ip_local, UDP_PORT);
	rc = sc3(SYS_bind, udp_sock, &sin, sizeof(sin));
out:
	sc1(SYS_close, s);
	return rc < 0 ? (int)-rc : 0;
}

static u16
ip_cksum(const u8 *p, size_t n)
{
	u32 sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (u32)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (u32)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

static u8 dgram[FRAME_MAX];

/* Datagram i of a run: UDP payload bytes from the seed (make_payload without its protocol bytes) */
static const u8 *
udp_payload(u32 seed, u32 i, size_t size)
{
	make_payload(pkt2, seed, i, size);
	return pkt2 + 2;
}

/* Send one IPv4 fragment (header + data) MPPE-encrypted on the wire */
static int
send_ip_fragment(u16 id, size_t off, const u8 *data, size_t len, int more)
{
	u8 *f = pkt2 + 4096;	/* scratch beyond the payload area: frames here are at most IP_MTU */
	u8 *ip = f + 2;
	mppe_size olen;
	u16 fo = (u16)((off / 8) | (more ? 0x2000 : 0));
	u16 c;

	f[0] = PPP_IP >> 8;
	f[1] = PPP_IP & 0xff;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (u8)((20 + len) >> 8);
	ip[3] = (u8)(20 + len);
	ip[4] = (u8)(id >> 8);
	ip[5] = (u8)id;
	ip[6] = (u8)(fo >> 8);
	ip[7] = (u8)fo;
	ip[8] = 64;
	ip[9] = 17;	/* UDP */
	memcpy(ip + 12, &ip_peer, 4);
	memcpy(ip + 16, &ip_local, 4);
	c = ip_cksum(ip, 20);
	ip[10] = (u8)(c >> 8);
	ip[11] = (u8)c;
	memcpy(ip + 20, data, len);
	pkt[0] = 0xff;
	pkt[1] = 0x03;
	pkt[2] = 0x00;
	pkt[3] = 0xfd;
	if (mppe_compress(&a2k, f, 22 + len, pkt + 4, sizeof(pkt) - 4, &olen) != MPPE_OK)
		return E2BIG;
	return hdlc_send(pkt, olen + 4);
}

/* udp_a2k N SIZE SEED: N UDP datagrams of SIZE bytes from the peer, fragmented by the agent at IP_MTU,
 * received on the kernel's socket and compared byte for byte */
static int
cmd_udp_a2k(char **argv, int argc)
{
	u32 n = (u32)num(argv[1]), size = (u32)num(argv[2]), seed = (u32)num(argv[3]), i, ok = 0;
	struct pollfd pfd;
	size_t off, chunk;
	long got;

	if (argc < 4 || !keys_set || udp_sock < 0 || size > 65507 || size + 8 > sizeof(dgram))
		return !keys_set || udp_sock < 0 ? EBADF : EINVAL;
	for (i = 0; i < n; i++) {
		u16 id = (u16)(0x4000 + i);

		dgram[0] = (u8)(UDP_PORT >> 8);	/* source port: any */
		dgram[1] = (u8)UDP_PORT;
		dgram[2] = (u8)(UDP_PORT >> 8);
		dgram[3] = (u8)UDP_PORT;
		dgram[4] = (u8)((size + 8) >> 8);
		dgram[5] = (u8)(size + 8);
		dgram[6] = dgram[7] = 0;	/* no UDP checksum (allowed for IPv4) */
		memcpy(dgram + 8, udp_payload(seed, i, size), size);
		for (off = 0; off < size + 8; off += chunk) {
			chunk = size + 8 - off;
			if (chunk > (IP_MTU - 20) / 8 * 8)
				chunk = (IP_MTU - 20) / 8 * 8;
			send_ip_fragment(id, off, dgram + off, chunk, off + chunk < size + 8);
		}
		pfd.fd = udp_sock;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (sc3(SYS_poll, &pfd, 1, 2000) <= 0)
			continue;
		got = sc((long)SYS_recvfrom, udp_sock, (long)dgram, sizeof(dgram), 0, 0, 0);
		if (got == (long)size && memcmp(dgram, udp_payload(seed, i, size), size) == 0)
			ok++;
		handle_kernel_dc_error();
	}
	put(". ok=");
	putnum(ok);
	put(" sent=");
	putnum(n);
	put("\n");
	return 0;
}

/* udp_k2a N SIZE SEED: N UDP datagrams of SIZE bytes sent by the kernel's socket to the peer; the kernel
 * fragments and encrypts them, the agent decrypts, reassembles and compares */
static int
cmd_udp_k2a(char **argv, int argc)
{
	u32 n = (u32)num(argv[1]), size = (u32)num(argv[2]), seed = (u32)num(argv[3]), i, ok = 0, frags = 0;
	struct sockaddr_in to;
	mppe_size olen;
	long got, rc;

	if (argc < 4 || !keys_set || udp_sock < 0 || size + 8 > sizeof(dgram))
		return !keys_set || udp_sock < 0 ? EBADF : EINVAL;
	sin_set(&to, ip_peer, UDP_PORT);
	for (i = 0; i < n; i++) {
		size_t have = 0, total = (size_t)-1;

		rc = sc(SYS_sendto, udp_sock, (long)udp_payload(seed, i, size), size, 0, (long)&to, sizeof(to));
		if (rc < 0)
			return (int)-rc;
		while (have != total && (got = hdlc_recv(pkt, sizeof(pkt), 1000)) > 0) {
			const u8 *ip;
			size_t off, len;

			if (got < 6 || pkt[2] != 0x00 || pkt[3] != 0xfd)
				continue;
			if (mppe_decompress(&k2a, pkt + 4, (mppe_size)got - 4, rxframe, sizeof(rxframe), &olen) !=
			    MPPE_OK || olen < 22 || rxframe[0] != 0x00 || rxframe[1] != 0x21)
				continue;
			ip = rxframe + 2;
			off = (size_t)((ip[6] & 0x1f) << 8 | ip[7]) * 8;
			len = (size_t)(ip[2] << 8 | ip[3]) - 20;
			if (ip[9] != 17 || off + len > sizeof(dgram) || ip_cksum(ip, 20) != 0)
				continue;
			memcpy(dgram + off, ip + 20, len);
			have += len;
			frags++;
			if (!(ip[6] & 0x20))
				total = off + len;
		}
		if (have == total && total == size + 8 &&
		    memcmp(dgram + 8, udp_payload(seed, i, size), size) == 0)
			ok++;
	}
	put(". ok=");
	putnum(ok);
	put(" sent=");
	putnum(n);
	put(" fragments=");
	putnum(frags);
	put("\n");
	return 0;
}

#define IP_COMMANDS \
	{ "ifup", cmd_ifup }, { "udp_a2k", cmd_udp_a2k }, { "udp_k2a", cmd_udp_k2a },
