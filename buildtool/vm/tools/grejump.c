/*
 * grejump: send one PPTP data packet whose GRE sequence number is far ahead of the call's.
 *
 *   grejump IFNAME DST SECONDS JUMP
 *
 * Watches IFNAME (AF_PACKET) for up to SECONDS for an enhanced-GRE data packet (RFC 2637: key and
 * sequence number present) going to the IPv4 address DST, takes its key (the receiver's Call ID) and
 * sequence number, and sends DST one GRE data packet of that call with the sequence number plus JUMP
 * (a decimal 32-bit number) and a short PPP payload, from a raw IPPROTO_GRE socket. That is what one
 * flipped bit in a sequence field does (GRE has no checksum). Prints "key=0x...", "seq=N" and "sent=N"
 * (the sequence number sent); exit 1 if no packet of a call was seen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GRE_K 0x2000
#define GRE_S 0x1000
#define GRE_A 0x0080
#define GRE_PPP 0x880b

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static unsigned long get32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

static void put16(unsigned char *p, unsigned v) { p[0] = v >> 8; p[1] = v; }

static void put32(unsigned char *p, unsigned long v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* A GRE data packet of a PPTP call to `dst` in the IPv4 packet `ip`: its key and sequence number. */
static int call_packet(const unsigned char *ip, ssize_t len, struct in_addr dst, unsigned *key,
                       unsigned long *seq)
{
    if (len < 20 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_GRE || memcmp(ip + 16, &dst, 4) != 0)
        return 0;
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    if ((size_t)len < ihl + 12)
        return 0;
    const unsigned char *g = ip + ihl;
    unsigned flags = get16(g);
    if ((flags & (GRE_K | GRE_S)) != (GRE_K | GRE_S) || (flags & 7) != 1 || get16(g + 2) != GRE_PPP)
        return 0;
    *key = get16(g + 6);
    *seq = get32(g + 8);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: grejump IFNAME DST SECONDS JUMP\n");
        return 2;
    }
    struct in_addr dst;
    if (inet_pton(AF_INET, argv[2], &dst) != 1) {
        fprintf(stderr, "grejump: not an IPv4 address: %s\n", argv[2]);
        return 2;
    }
    double deadline = now() + atof(argv[3]);
    unsigned long jump = strtoul(argv[4], NULL, 10);
    /* ETH_P_ALL: a socket bound to one protocol is not given the packets the host sends */
    int cap = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
    if (cap < 0) {
        perror("grejump: AF_PACKET socket");
        return 2;
    }
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(argv[1])};
    if (!sll.sll_ifindex || bind(cap, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        fprintf(stderr, "grejump: cannot capture on %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    unsigned key = 0;
    unsigned long seq = 0;
    int found = 0;
    unsigned char buf[65536];
    while (!found && now() < deadline) {
        struct pollfd pfd = {.fd = cap, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        struct sockaddr_ll from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(cap, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
        found = n > 0 && from.sll_protocol == htons(ETH_P_IP) && call_packet(buf, n, dst, &key, &seq);
    }
    close(cap);
    if (!found) {
        printf("key=none\n");
        return 1;
    }
    /* flags K|S, version 1; protocol; payload length; Call ID; sequence; then a PPP frame (LCP, as
       pppd would discard it if it ever got through: address, control, protocol c021, code 0) */
    unsigned char pkt[12 + 8] = {0};
    static const unsigned char ppp[8] = {0xff, 0x03, 0xc0, 0x21, 0x00, 0x01, 0x00, 0x04};
    unsigned long sent = (seq + jump) & 0xffffffffUL;
    put16(pkt, GRE_K | GRE_S | 1);
    put16(pkt + 2, GRE_PPP);
    put16(pkt + 4, sizeof(ppp));
    put16(pkt + 6, key);
    put32(pkt + 8, sent);
    memcpy(pkt + 12, ppp, sizeof(ppp));
    int out = socket(AF_INET, SOCK_RAW, IPPROTO_GRE);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
    if (out < 0 || sendto(out, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)sizeof(pkt)) {
        perror("grejump: sending the GRE packet");
        return 2;
    }
    printf("key=0x%04x\nseq=%lu\nsent=%lu\n", key, seq, sent);
    return 0;
}
