/*
 * ccp_probe: does the loaded ppp_generic accept a CCP option longer than 32 bytes?
 *
 * Opens /dev/ppp, attaches a new PPP unit (PPPIOCNEWUNIT) and hands it an MPPE (CI_MPPE) compression
 * option of LEN bytes (default 40) with PPPIOCSCOMPRESS, then prints one parseable line:
 *
 *     ccp_probe: len=40 result=ENOBUFS
 *
 * With Debian's stock ppp_generic (CCP_MAX_OPTION_LENGTH 32) a 40-byte option is refused before the
 * compressor is looked up: EFAULT. With ours (64) the length is accepted, ppp_mppe is found and its
 * allocator rejects an option that is not exactly 6 + 16 bytes: ENOBUFS. EINVAL means no MPPE
 * compressor was found. The exit status is 0 whenever a result was reported; 2 if the probe could not
 * get that far (no /dev/ppp, no permission), with a "ccp_probe: error:" line naming the step.
 *
 * Usage: ccp_probe [LEN]   (2 <= LEN <= 255)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ppp-ioctl.h>

#define CI_MPPE_OPTION 18 /* CI_MPPE in <linux/ppp-comp.h> */
#define CILEN_MPPE_OPTION 6 /* the option's own length byte: type, length, 4 supported-bits bytes */

static const char *errno_name(int err)
{
	const char *name = strerrorname_np(err);
	static char buf[32];

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

static int fail(const char *step, int err)
{
	printf("ccp_probe: error: %s: %s (%s)\n", step, errno_name(err), strerror(err));
	return 2;
}

int main(int argc, char **argv)
{
	unsigned char option[255];
	struct ppp_option_data data;
	long len = 40;
	int fd, unit = -1;

	if (argc > 2 || (argc == 2 && ((len = strtol(argv[1], NULL, 10)) < 2 || len > 255))) {
		fprintf(stderr, "usage: ccp_probe [LEN]   (2 <= LEN <= 255, default 40)\n");
		return 64;
	}
	fd = open("/dev/ppp", O_RDWR);
	if (fd < 0)
		return fail("open /dev/ppp", errno);
	if (ioctl(fd, PPPIOCNEWUNIT, &unit) < 0)
		return fail("PPPIOCNEWUNIT", errno);

	memset(option, 0, sizeof(option));
	option[0] = CI_MPPE_OPTION;
	option[1] = CILEN_MPPE_OPTION;
	option[5] = 0x40; /* MPPE_BIT_S: 128-bit keys */
	data.ptr = option;
	data.length = (__u32)len;
	data.transmit = 1;

	if (ioctl(fd, PPPIOCSCOMPRESS, &data) < 0)
		printf("ccp_probe: len=%ld unit=%d result=%s\n", len, unit, errno_name(errno));
	else
		printf("ccp_probe: len=%ld unit=%d result=OK\n", len, unit);
	fflush(stdout);
	close(fd);
	return 0;
}
