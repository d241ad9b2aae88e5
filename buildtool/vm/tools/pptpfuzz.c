/*
 * pptpfuzz: throw malformed PPTP at a server, to check that pptpd and the kernel survive it.
 *
 *   pptpfuzz SERVER_IPV4 SEED TCP_MESSAGES GRE_FRAMES
 *
 * TCP 1723 (the control connection): TCP_MESSAGES messages spread over short connections, each one of
 *   - random bytes of random length;
 *   - a control message header (length, type 1, magic cookie, control type 1..15) whose length field lies
 *     and whose body is random;
 *   - a well-formed Start-Control-Connection-Request truncated at a random point;
 *   - a well-formed SCCRQ followed by a random-length Outgoing-Call-Request with random fields.
 * GRE (IP protocol 47, raw socket): GRE_FRAMES frames, each random bytes, or an enhanced GRE header
 * (RFC 2637: version 1, protocol 0x880b) with random call ID, random S/A flags, a payload length that may
 * lie, a random or PPP-looking payload, and a random truncation.
 * The generator is deterministic for a SEED. It prints "tcp_messages=N tcp_connections=N
 * tcp_refused=N tcp_closed_by_server=N gre_frames=N gre_errors=N" and exits 0 unless it could not run at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rnd();
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

/* a control message header: length, PPTP message type 1, magic cookie, control type */
static void ctrl_header(unsigned char *p, unsigned length, unsigned ctrl_type)
{
    put16(p, length);
    put16(p + 2, 1);
    put32(p + 4, 0x1a2b3c4d);
    put16(p + 8, ctrl_type);
    put16(p + 10, 0);
}

static size_t sccrq(unsigned char *p)
{
    memset(p, 0, 156);
    ctrl_header(p, 156, 1);
    put16(p + 12, 0x0100); /* protocol version 1.0 */
    put32(p + 16, 1);      /* framing capabilities */
    put32(p + 20, 1);      /* bearer capabilities */
    put16(p + 24, 1);      /* maximum channels */
    put16(p + 26, 1);      /* firmware revision */
    memcpy(p + 28, "fuzz", 4);
    memcpy(p + 92, "fuzz", 4);
    return 156;
}

static size_t tcp_message(unsigned char *p, size_t room)
{
    size_t n;
    switch (rnd() % 4) {
    case 0:
        n = 1 + rnd() % 300;
        fill_random(p, n);
        return n;
    case 1:
        n = 12 + rnd() % 200;
        fill_random(p, n);
        ctrl_header(p, rnd() % 3 ? n + (rnd() % 64) - 32 : rnd() & 0xffff, 1 + rnd() % 15);
        return n;
    case 2:
        n = sccrq(p);
        return 1 + rnd() % n;
    default:
        n = sccrq(p);
        size_t m = 12 + rnd() % 168;
        if (n + m > room)
            m = room - n;
        fill_random(p + n, m);
        ctrl_header(p + n, rnd() % 2 ? 168 : m, 7); /* Outgoing-Call-Request */
        return n + m;
    }
}

static size_t gre_frame(unsigned char *p)
{
    size_t n;
    if (rnd() % 4 == 0) {
        n = 1 + rnd() % 200;
        fill_random(p, n);
        return n;
    }
    unsigned flags = 0x2001; /* K (key present), version 1 */
    int seq = rnd() % 2, ack = rnd() % 2;
    if (seq)
        flags |= 0x1000;
    if (ack)
        flags |= 0x0080;
    if (rnd() % 8 == 0)
        flags = rnd() & 0xffff;
    size_t off = 8 + (seq ? 4 : 0) + (ack ? 4 : 0);
    size_t payload = rnd() % 1500;
    put16(p, flags);
    put16(p + 2, 0x880b);
    put16(p + 4, rnd() % 3 ? payload : rnd() & 0xffff);
    put16(p + 6, rnd() % 4 ? rnd() % 8 : rnd() & 0xffff); /* call id: small ones hit real calls */
    fill_random(p + 8, off - 8);
    fill_random(p + off, payload);
    if (payload >= 4 && rnd() % 2) { /* look like PPP: ff 03 then MPPE, LCP, CCP or IP */
        static const unsigned protos[] = {0x00fd, 0xc021, 0x80fd, 0x0021};
        p[off] = 0xff;
        p[off + 1] = 0x03;
        put16(p + off + 2, protos[rnd() % 4]);
    }
    n = off + payload;
    if (rnd() % 3 == 0)
        n = 1 + rnd() % n;
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pptpfuzz SERVER_IPV4 SEED TCP_MESSAGES GRE_FRAMES\n");
        return 2;
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
        fprintf(stderr, "pptpfuzz: bad address %s\n", argv[1]);
        return 2;
    }
    rng_state = strtoull(argv[2], NULL, 0) * 0x9e3779b97f4a7c15ULL + 1;
    long tcp_total = atol(argv[3]), gre_total = atol(argv[4]);
    static unsigned char buf[4096];

    long sent = 0, conns = 0, refused = 0, closed_by_server = 0;
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    while (sent < tcp_total) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            perror("pptpfuzz: socket");
            return 1;
        }
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sin.sin_port = htons(1723);
        if (connect(s, (struct sockaddr *)&sin, sizeof sin) < 0) {
            refused++;
            close(s);
            if (refused > 50 && conns == 0) {
                fprintf(stderr, "pptpfuzz: nothing listens on %s:1723\n", argv[1]);
                return 1;
            }
            usleep(20000);
            continue;
        }
        conns++;
        int per_conn = 1 + (int)(rnd() % 12);
        for (int i = 0; i < per_conn && sent < tcp_total; i++) {
            size_t n = tcp_message(buf, sizeof buf);
            sent++;
            if (send(s, buf, n, MSG_NOSIGNAL) < 0)
                break;
        }
        if (rnd() % 4 == 0) { /* sometimes read what the server answers before going away */
            unsigned char junk[512];
            (void)!recv(s, junk, sizeof junk, MSG_DONTWAIT);
        }
        /* Wait (1 s at most) until the server has closed its end before the next connection: pptpd
         * listens with a backlog of 3, and a SYN that finds the queue full is dropped and only sent
         * again after a second, so connections opened faster than pptpd takes them cost time, not
         * coverage. */
        shutdown(s, SHUT_WR);
        unsigned char drain[512];
        ssize_t got;
        while ((got = recv(s, drain, sizeof drain, 0)) > 0)
            ;
        if (got == 0)
            closed_by_server++;
        close(s);
    }

    long frames = 0, errors = 0;
    int g = socket(AF_INET, SOCK_RAW, IPPROTO_GRE);
    if (g < 0) {
        perror("pptpfuzz: raw GRE socket");
        return 1;
    }
    sin.sin_port = 0;
    for (long i = 0; i < gre_total; i++) {
        size_t n = gre_frame(buf);
        if (sendto(g, buf, n, 0, (struct sockaddr *)&sin, sizeof sin) < 0)
            errors++;
        frames++;
        if (i % 64 == 63)
            usleep(2000); /* let the receiver breathe: we test robustness, not queue overflow */
    }
    close(g);
    printf("tcp_messages=%ld tcp_connections=%ld tcp_refused=%ld tcp_closed_by_server=%ld gre_frames=%ld "
           "gre_errors=%ld\n", sent, conns, refused, closed_by_server, frames, errors);
    return 0;
}
