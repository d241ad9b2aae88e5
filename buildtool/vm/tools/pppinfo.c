/*
 * pppinfo: what the kernel says about a ppp unit, for the VM scenarios.
 *
 *   pppinfo IFNAME
 *
 * Prints one "key=value" per line:
 *   flags=0x...      ppp_generic's flags for the unit (PPPIOCGFLAGS on an fd attached to it)
 *   comp_run=0|1     SC_COMP_RUN: a transmit compressor (MPPE here) is running
 *   decomp_run=0|1   SC_DECOMP_RUN: a receive decompressor is running
 *   c_packets=N c_unc_bytes=N c_bytes=N   the compressor's statistics (SIOCGPPPCSTATS)
 *   d_packets=N d_unc_bytes=N d_bytes=N   the decompressor's statistics
 *   rx_packets=N tx_packets=N             the unit's packet counters (SIOCGPPPSTATS)
 * Exit status 0 on success, 1 on any error (with the reason on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ppp.h>
#include <linux/ppp_defs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SC_COMP_RUN
#define SC_COMP_RUN 0x00001000
#endif
#ifndef SC_DECOMP_RUN
#define SC_DECOMP_RUN 0x00002000
#endif

static int fail(const char *what)
{
    fprintf(stderr, "pppinfo: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strncmp(argv[1], "ppp", 3) != 0) {
        fprintf(stderr, "usage: pppinfo pppN\n");
        return 2;
    }
    int unit = atoi(argv[1] + 3);

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (sock < 0)
        return fail("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, argv[1], sizeof ifr.ifr_name - 1);

    struct ppp_comp_stats cstats;
    memset(&cstats, 0, sizeof cstats);
    ifr.ifr_data = (char *)&cstats;
    if (ioctl(sock, SIOCGPPPCSTATS, &ifr) < 0)
        return fail("SIOCGPPPCSTATS");
    struct ppp_stats stats;
    memset(&stats, 0, sizeof stats);
    ifr.ifr_data = (char *)&stats;
    if (ioctl(sock, SIOCGPPPSTATS, &ifr) < 0)
        return fail("SIOCGPPPSTATS");

    int fd = open("/dev/ppp", O_RDWR);
    if (fd < 0)
        return fail("open /dev/ppp");
    if (ioctl(fd, PPPIOCATTACH, &unit) < 0)
        return fail("PPPIOCATTACH");
    int flags = 0;
    if (ioctl(fd, PPPIOCGFLAGS, &flags) < 0)
        return fail("PPPIOCGFLAGS");

    printf("flags=0x%x\n", (unsigned)flags);
    printf("comp_run=%d\n", (flags & SC_COMP_RUN) ? 1 : 0);
    printf("decomp_run=%d\n", (flags & SC_DECOMP_RUN) ? 1 : 0);
    printf("c_packets=%u\nc_unc_bytes=%u\nc_bytes=%u\n", cstats.c.comp_packets + cstats.c.inc_packets,
           cstats.c.unc_bytes, cstats.c.comp_bytes);
    printf("d_packets=%u\nd_unc_bytes=%u\nd_bytes=%u\n", cstats.d.comp_packets + cstats.d.inc_packets,
           cstats.d.unc_bytes, cstats.d.comp_bytes);
    printf("rx_packets=%u\ntx_packets=%u\n", stats.p.ppp_ipackets, stats.p.ppp_opackets);
    close(fd);
    close(sock);
    return 0;
}
