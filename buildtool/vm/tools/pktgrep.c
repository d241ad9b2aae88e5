/*
 * pktgrep: watch an interface for a while and say whether a byte pattern crossed it in clear.
 *
 *   pktgrep IFNAME IPPROTO SECONDS HEXPATTERN
 *
 * Captures IPv4 packets of protocol IPPROTO (47 = GRE, 1 = ICMP) on IFNAME, both directions, with an
 * AF_PACKET socket and prints, as "key=value" lines:
 *   packets=N    IPv4 packets of that protocol seen
 *   matched=N    of those, how many carry HEXPATTERN anywhere after the IP header
 * and for GRE (RFC 2637 enhanced GRE as PPTP uses it), what the PPP frames inside carried:
 *   gre_data=N   GRE packets with a PPP payload
 *   ppp_mppe=N   PPP protocol 0x00fd (an MPPE-encrypted datagram)
 *   ppp_ip=N     PPP protocol 0x0021 (a plain IPv4 datagram: the tunnel is NOT encrypted)
 *   ppp_other=N  anything else (LCP, CCP, ...)
 * The scenario runs it with the ICMP payload pattern of a ping: through the tunnel, an encrypted tunnel
 * must show matched=0 on GRE; on the plain veth the same pattern must match ICMP (that is the check that
 * the capture can see a pattern at all).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_hex(const char *hex, unsigned char *out, size_t max)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > max || n == 0)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)(n / 2);
}

static int contains(const unsigned char *hay, size_t n, const unsigned char *needle, size_t m)
{
    if (m > n)
        return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pktgrep IFNAME IPPROTO SECONDS HEXPATTERN\n");
        return 2;
    }
    int proto = atoi(argv[2]);
    double seconds = atof(argv[3]);
    unsigned char pattern[64];
    int plen = parse_hex(argv[4], pattern, sizeof pattern);
    if (plen < 0) {
        fprintf(stderr, "pktgrep: bad hex pattern\n");
        return 2;
    }
    /* ETH_P_ALL, not ETH_P_IP: only "all protocols" sockets are shown the packets the host sends */
    int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
    if (fd < 0) {
        perror("pktgrep: socket");
        return 1;
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)if_nametoindex(argv[1]);
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        fprintf(stderr, "pktgrep: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    unsigned long packets = 0, matched = 0, gre_data = 0, mppe = 0, ip = 0, other = 0;
    static unsigned char buf[70000];
    double end = now() + seconds;
    for (;;) {
        double left = end - now();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        struct sockaddr_ll from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 20 || from.sll_protocol != htons(ETH_P_IP))
            continue;
        size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
        if ((buf[0] >> 4) != 4 || buf[9] != proto || (size_t)n < ihl)
            continue;
        packets++;
        const unsigned char *pl = buf + ihl;
        size_t plen_total = (size_t)n - ihl;
        if (contains(pl, plen_total, pattern, (size_t)plen))
            matched++;
        if (proto != 47 || plen_total < 8)
            continue;
        /* enhanced GRE: flags, version 1, protocol 0x880b, payload length, call id, [seq], [ack] */
        unsigned flags = (unsigned)pl[0] << 8 | pl[1];
        if ((flags & 0x7) != 1 || (pl[2] << 8 | pl[3]) != 0x880b)
            continue;
        size_t off = 8;
        if (flags & 0x1000)
            off += 4; /* S: sequence number */
        if (flags & 0x0080)
            off += 4; /* A: acknowledgment number */
        unsigned paylen = (unsigned)pl[4] << 8 | pl[5];
        if (paylen == 0 || off + 2 > plen_total)
            continue;
        gre_data++;
        const unsigned char *ppp = pl + off;
        size_t room = plen_total - off;
        if (room >= 2 && ppp[0] == 0xff && ppp[1] == 0x03) {
            ppp += 2;
            room -= 2;
        }
        unsigned pproto;
        if (room >= 1 && (ppp[0] & 1))
            pproto = ppp[0]; /* protocol field compressed to one byte */
        else if (room >= 2)
            pproto = (unsigned)ppp[0] << 8 | ppp[1];
        else
            continue;
        if (pproto == 0x00fd || pproto == 0xfd)
            mppe++;
        else if (pproto == 0x0021 || pproto == 0x21)
            ip++;
        else
            other++;
    }
    printf("packets=%lu\nmatched=%lu\ngre_data=%lu\nppp_mppe=%lu\nppp_ip=%lu\nppp_other=%lu\n", packets,
           matched, gre_data, mppe, ip, other);
    return 0;
}
