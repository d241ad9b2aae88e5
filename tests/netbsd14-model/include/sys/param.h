#ifndef _MODEL_SYS_PARAM_H_
#define _MODEL_SYS_PARAM_H_
#define __NetBSD_Version__	104010000	/* NetBSD 1.4.1 */
#include <sys/types.h>
#define MCLBYTES	2048
#define MLEN		108
#define MHLEN		88
#endif
