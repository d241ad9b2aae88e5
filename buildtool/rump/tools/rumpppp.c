/*
 * rumpppp: drive NetBSD's own PPP code (if_ppp + ppp_tty, in a rump kernel linked into this process) the
 * way pppd and a serial line would, under the control of the test that runs it.
 *
 * The process boots the rump kernel, opens a pty pair inside it (/dev/ptyp0 master, /dev/ttyp0 slave),
 * puts the PPP line discipline on the slave, and then reads one command per line from stdin. The slave is
 * pppd's side (PPPIOC* ioctls, write/read of PPP packets with their 4-byte header); the master is the
 * wire (async-HDLC bytes in and out; the test does the framing). Every reply line starts with '@' so that
 * the rump kernel's console output, which shares stdout, can be told apart (the test logs it and looks
 * for panics and diagnostics).
 *
 * Commands (HEX = hex bytes, '-' for none):
 *   compress T LEN HEX    PPPIOCSCOMPRESS, transmit T (0/1), option bytes HEX, length field LEN
 *   setflags HEX / getflags / setmru N / npmode PROTO MODE
 *   pppwrite HEX          write a packet (address, control, protocol, data) on the slave: pppd sending
 *   pppread               every packet queued for pppd: "@pkt HEX" each, then "@end"
 *   wire HEX              write raw bytes on the master: the peer's bytes arriving on the line
 *   wireread MS           the bytes sent on the line, waiting until the line is quiet for MS ms
 *   ifup LOCAL PEER MTU   configure ppp0 (point-to-point IPv4, up, IP passed)
 *   udpbind PORT / udpsend DST PORT LEN SEED / udprecv MS
 *   modunload NAME        modctl(MODCTL_UNLOAD)
 *   reregister NAME       call module NAME's init a second time (kernel-side hook in the test component)
 *   mbufs                 mbufs in use (sum of kern.mbuf.stats m_mtypes)
 *   quit
 * Replies: "@rc ERRNO" (0 = success; NetBSD errno values) or the data lines above.
 *
 * The NetBSD structures and ioctl numbers below are spelled out because this program is built with the
 * host's (Linux) headers; they match sys/net/if_ppp.h, sys/sys/ttycom.h and sys/sys/sockio.h on amd64.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#define NB_IOC_OUT 0x40000000UL
#define NB_IOC_IN 0x80000000UL
#define NB_IOC(inout, group, num, len) \
    ((unsigned long)(inout) | (((unsigned long)(len) & 0x1fff) << 16) | ((group) << 8) | (num))
#define NB_IOW(g, n, len) NB_IOC(NB_IOC_IN, g, n, len)
#define NB_IOR(g, n, len) NB_IOC(NB_IOC_OUT, g, n, len)
#define NB_IOWR(g, n, len) NB_IOC(NB_IOC_IN | NB_IOC_OUT, g, n, len)

struct nb_ppp_option_data {
    unsigned char *ptr;
    unsigned int length;
    int transmit;
};
struct nb_npioctl {
    int protocol;
    int mode;
};
struct nb_sockaddr_in {
    uint8_t sin_len;
    uint8_t sin_family;
    uint16_t sin_port;
    uint32_t sin_addr;
    char sin_zero[8];
};
struct nb_ifaliasreq {
    char name[16];
    struct nb_sockaddr_in addr, dstaddr, mask;
};
struct nb_ifreq {
    char name[16];
    union {
        short flags;
        int mtu;
        char pad[128];
    } u;
};

#define NB_TIOCSETD NB_IOW('t', 27, sizeof(int))
#define NB_PPPDISC 5
#define NB_PPPIOCGUNIT NB_IOR('t', 86, sizeof(int))
#define NB_PPPIOCGFLAGS NB_IOR('t', 90, sizeof(int))
#define NB_PPPIOCSFLAGS NB_IOW('t', 89, sizeof(int))
#define NB_PPPIOCSMRU NB_IOW('t', 82, sizeof(int))
#define NB_PPPIOCSCOMPRESS NB_IOW('t', 77, sizeof(struct nb_ppp_option_data))
#define NB_PPPIOCSNPMODE NB_IOW('t', 75, sizeof(struct nb_npioctl))
#define NB_SIOCSIFFLAGS NB_IOW('i', 16, sizeof(struct nb_ifreq))
#define NB_SIOCGIFFLAGS NB_IOWR('i', 17, sizeof(struct nb_ifreq))
#define NB_SIOCAIFADDR NB_IOW('i', 26, sizeof(struct nb_ifaliasreq))
#define NB_SIOCSIFMTU NB_IOW('i', 127, sizeof(struct nb_ifreq))
#define NB_O_RDWR 0x2
#define NB_O_NONBLOCK 0x4
#define NB_AF_INET 2
#define NB_SOCK_DGRAM 2
#define NB_SOL_SOCKET 0xffff
#define NB_SO_SNDBUF 0x1001
#define NB_SO_RCVBUF 0x1002
#define NB_MSG_DONTWAIT 0x80
#define NB_IFF_UP 0x1
#define NB_MODCTL_UNLOAD 1
#define NB_EAGAIN 35

#define MAXLINE (1 << 20)
#define MAXPKT 65536

/* kernel-side hooks of the rumpppp_test component (absent from builds without it) */
extern int rumpppp_reregister(const char *) __attribute__((weak));

static int master_fd = -1, slave_fd = -1, udp_fd = -1;
static char ifname[16];

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* decode HEX (or "-") into buf; returns length or -1 */
static long unhex(const char *s, unsigned char *buf, size_t cap)
{
    size_t n = 0;
    if (s == NULL)
        return -1;
    if (strcmp(s, "-") == 0)
        return 0;
    while (s[0] && s[1]) {
        int hi = hexval(s[0]), lo = hexval(s[1]);
        if (hi < 0 || lo < 0 || n >= cap)
            return -1;
        buf[n++] = (unsigned char)(hi << 4 | lo);
        s += 2;
    }
    return s[0] ? -1 : (long)n;
}

static void put_hex(const char *tag, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    fputs(tag, stdout);
    putchar(' ');
    if (n == 0)
        putchar('-');
    for (i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
    putchar('\n');
}

static void reply_rc(int rc)
{
    printf("@rc %d\n", rc < 0 ? errno : 0);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int open_line(void)
{
    int disc = NB_PPPDISC, unit = -1;
    master_fd = rump_sys_open("/dev/ptyp0", NB_O_RDWR | NB_O_NONBLOCK);
    if (master_fd < 0)
        return -1;
    slave_fd = rump_sys_open("/dev/ttyp0", NB_O_RDWR | NB_O_NONBLOCK);
    if (slave_fd < 0)
        return -1;
    if (rump_sys_ioctl(slave_fd, NB_TIOCSETD, &disc) < 0)
        return -1;
    if (rump_sys_ioctl(slave_fd, NB_PPPIOCGUNIT, &unit) < 0)
        return -1;
    snprintf(ifname, sizeof ifname, "ppp%d", unit);
    return unit;
}

static void cmd_compress(char *t, char *len, char *hex)
{
    static unsigned char opt[256];
    struct nb_ppp_option_data od;
    long n = unhex(hex, opt, sizeof opt);
    if (t == NULL || len == NULL || n < 0) {
        printf("@error usage: compress T LEN HEX\n");
        return;
    }
    od.ptr = opt;
    od.length = (unsigned)atoi(len);
    od.transmit = atoi(t);
    reply_rc(rump_sys_ioctl(slave_fd, NB_PPPIOCSCOMPRESS, &od));
}

static void cmd_int_ioctl(unsigned long req, const char *arg, int base)
{
    int v = (int)strtol(arg ? arg : "0", NULL, base);
    reply_rc(rump_sys_ioctl(slave_fd, req, &v));
}

static void cmd_getflags(void)
{
    int v = 0;
    if (rump_sys_ioctl(slave_fd, NB_PPPIOCGFLAGS, &v) < 0)
        reply_rc(-1);
    else
        printf("@flags %x\n", (unsigned)v);
}

static void cmd_npmode(char *proto, char *mode)
{
    struct nb_npioctl np;
    np.protocol = (int)strtol(proto ? proto : "0", NULL, 16);
    np.mode = atoi(mode ? mode : "0");
    reply_rc(rump_sys_ioctl(slave_fd, NB_PPPIOCSNPMODE, &np));
}

static void cmd_write(int fd, char *hex, unsigned char *buf)
{
    long n = unhex(hex, buf, MAXLINE / 2), off = 0;
    if (n < 0) {
        printf("@error bad hex\n");
        return;
    }
    while (off < n) {
        ssize_t w = rump_sys_write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && (errno == NB_EAGAIN || errno == EAGAIN)) {
            usleep(1000);
            continue;
        }
        if (w < 0) {
            reply_rc(-1);
            return;
        }
        off += w;
    }
    reply_rc(0);
}

static void cmd_pppread(unsigned char *buf)
{
    for (;;) {
        ssize_t r = rump_sys_read(slave_fd, buf, MAXPKT);
        if (r <= 0)
            break;
        put_hex("@pkt", buf, (size_t)r);
    }
    printf("@end\n");
}

static void cmd_wireread(char *ms, unsigned char *buf)
{
    long quiet = atol(ms ? ms : "50"), last = now_ms();
    size_t total = 0;
    while (now_ms() - last < quiet && total < MAXLINE / 2 - 4096) {
        ssize_t r = rump_sys_read(master_fd, buf + total, 4096);
        if (r > 0) {
            total += (size_t)r;
            last = now_ms();
        } else {
            usleep(2000);
        }
    }
    put_hex("@data", buf, total);
}

static int parse_ipv4(const char *s, uint32_t *out)
{
    unsigned a, b, c, d;
    if (s == NULL || sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4)
        return -1;
    *out = htobe32(a << 24 | b << 16 | c << 8 | d);
    return 0;
}

static void set_sin(struct nb_sockaddr_in *sa, uint32_t addr, unsigned port)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_len = sizeof *sa;
    sa->sin_family = NB_AF_INET;
    sa->sin_port = htobe16((uint16_t)port);
    sa->sin_addr = addr;
}

static void cmd_ifup(char *local, char *peer, char *mtu)
{
    struct nb_ifaliasreq ifra;
    struct nb_ifreq ifr;
    uint32_t la, pa;
    int s;
    if (parse_ipv4(local, &la) < 0 || parse_ipv4(peer, &pa) < 0 || mtu == NULL) {
        printf("@error usage: ifup LOCAL PEER MTU\n");
        return;
    }
    s = rump_sys_socket(NB_AF_INET, NB_SOCK_DGRAM, 0);
    if (s < 0) {
        reply_rc(-1);
        return;
    }
    memset(&ifra, 0, sizeof ifra);
    memcpy(ifra.name, ifname, sizeof ifra.name);
    set_sin(&ifra.addr, la, 0);
    set_sin(&ifra.dstaddr, pa, 0);
    set_sin(&ifra.mask, htobe32(0xffffffffu), 0);
    if (rump_sys_ioctl(s, NB_SIOCAIFADDR, &ifra) < 0)
        goto fail;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.name, ifname, sizeof ifr.name);
    ifr.u.mtu = atoi(mtu);
    if (rump_sys_ioctl(s, NB_SIOCSIFMTU, &ifr) < 0)
        goto fail;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.name, ifname, sizeof ifr.name);
    if (rump_sys_ioctl(s, NB_SIOCGIFFLAGS, &ifr) < 0)
        goto fail;
    ifr.u.flags |= NB_IFF_UP;
    if (rump_sys_ioctl(s, NB_SIOCSIFFLAGS, &ifr) < 0)
        goto fail;
    rump_sys_close(s);
    cmd_npmode("21", "0"); /* NPMODE_PASS for IP */
    return;
fail:
    reply_rc(-1);
    rump_sys_close(s);
}

static void cmd_udpbind(char *port)
{
    struct nb_sockaddr_in sa;
    int big = 128 * 1024; /* room for a 50000-byte datagram; below sb_max's limit */
    if (udp_fd < 0)
        udp_fd = rump_sys_socket(NB_AF_INET, NB_SOCK_DGRAM, 0);
    if (udp_fd < 0 || rump_sys_setsockopt(udp_fd, NB_SOL_SOCKET, NB_SO_SNDBUF, &big, sizeof big) < 0 ||
        rump_sys_setsockopt(udp_fd, NB_SOL_SOCKET, NB_SO_RCVBUF, &big, sizeof big) < 0) {
        reply_rc(-1);
        return;
    }
    set_sin(&sa, 0, (unsigned)atoi(port ? port : "0"));
    reply_rc(rump_sys_bind(udp_fd, (void *)&sa, sizeof sa));
}

/* payload byte i of a datagram with SEED: the test computes the same bytes */
static unsigned char pattern(unsigned long seed, unsigned long i)
{
    return (unsigned char)((seed * 131u + i * 7u + (i >> 8)) & 0xff);
}

static void cmd_udpsend(char *dst, char *port, char *len, char *seed, unsigned char *buf)
{
    struct nb_sockaddr_in sa;
    uint32_t da;
    unsigned long n = strtoul(len ? len : "0", NULL, 10), sd = strtoul(seed ? seed : "0", NULL, 10), i;
    if (udp_fd < 0 || parse_ipv4(dst, &da) < 0 || n > MAXPKT) {
        printf("@error usage: udpbind first; udpsend DST PORT LEN SEED\n");
        return;
    }
    for (i = 0; i < n; i++)
        buf[i] = pattern(sd, i);
    set_sin(&sa, da, (unsigned)atoi(port ? port : "0"));
    reply_rc(rump_sys_sendto(udp_fd, buf, n, 0, (void *)&sa, sizeof sa) < 0 ? -1 : 0);
}

static void cmd_udprecv(char *ms, unsigned char *buf)
{
    long deadline = now_ms() + atol(ms ? ms : "1000");
    while (udp_fd >= 0) {
        ssize_t r = rump_sys_recvfrom(udp_fd, buf, MAXPKT, NB_MSG_DONTWAIT, NULL, NULL);
        if (r >= 0) {
            put_hex("@dgram", buf, (size_t)r);
            return;
        }
        if (now_ms() > deadline)
            break;
        usleep(2000);
    }
    printf("@dgram none\n");
}

static void cmd_mbufs(void)
{
    int mib[3] = {1 /* CTL_KERN */, 39 /* KERN_MBUF */, 6 /* MBUF_STATS */};
    struct {
        unsigned long spare[7];
        unsigned short mtypes[256];
    } st;
    size_t len = sizeof st;
    unsigned long total = 0;
    int i;
    if (rump_sys___sysctl(mib, 3, &st, &len, NULL, 0) < 0) {
        reply_rc(-1);
        return;
    }
    for (i = 0; i < 256; i++)
        total += st.mtypes[i];
    printf("@mbufs %lu\n", total);
}

static void cmd_reregister(char *name)
{
    if (!rumpppp_reregister) {
        printf("@error this build has no test component\n");
        return;
    }
    rump_schedule();
    int rc = rumpppp_reregister(name ? name : "");
    rump_unschedule();
    printf("@rc %d\n", rc);
}

int main(void)
{
    static char line[MAXLINE];
    static unsigned char buf[MAXLINE / 2 + MAXPKT];
    int unit;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rump_init() != 0) {
        printf("@fatal rump_init failed\n");
        return 1;
    }
    unit = open_line();
    if (unit < 0) {
        printf("@fatal cannot open the pty pair with the PPP discipline: errno %d\n", errno);
        return 1;
    }
    printf("@ready %s\n", ifname);
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *save = NULL, *cmd = strtok_r(line, " \n", &save);
        char *a = strtok_r(NULL, " \n", &save), *b = strtok_r(NULL, " \n", &save);
        char *c = strtok_r(NULL, " \n", &save), *d = strtok_r(NULL, " \n", &save);
        if (cmd == NULL)
            continue;
        if (strcmp(cmd, "compress") == 0)
            cmd_compress(a, b, c);
        else if (strcmp(cmd, "setflags") == 0)
            cmd_int_ioctl(NB_PPPIOCSFLAGS, a, 16);
        else if (strcmp(cmd, "getflags") == 0)
            cmd_getflags();
        else if (strcmp(cmd, "setmru") == 0)
            cmd_int_ioctl(NB_PPPIOCSMRU, a, 10);
        else if (strcmp(cmd, "npmode") == 0)
            cmd_npmode(a, b);
        else if (strcmp(cmd, "pppwrite") == 0)
            cmd_write(slave_fd, a, buf);
        else if (strcmp(cmd, "pppread") == 0)
            cmd_pppread(buf);
        else if (strcmp(cmd, "wire") == 0)
            cmd_write(master_fd, a, buf);
        else if (strcmp(cmd, "wireread") == 0)
            cmd_wireread(a, buf);
        else if (strcmp(cmd, "ifup") == 0)
            cmd_ifup(a, b, c);
        else if (strcmp(cmd, "udpbind") == 0)
            cmd_udpbind(a);
        else if (strcmp(cmd, "udpsend") == 0)
            cmd_udpsend(a, b, c, d, buf);
        else if (strcmp(cmd, "udprecv") == 0)
            cmd_udprecv(a, buf);
        else if (strcmp(cmd, "modunload") == 0)
            reply_rc(rump_sys_modctl(NB_MODCTL_UNLOAD, a ? a : ""));
        else if (strcmp(cmd, "reregister") == 0)
            cmd_reregister(a);
        else if (strcmp(cmd, "mbufs") == 0)
            cmd_mbufs();
        else if (strcmp(cmd, "quit") == 0)
            break;
        else
            printf("@error unknown command %s\n", cmd);
    }
    return 0;
}
