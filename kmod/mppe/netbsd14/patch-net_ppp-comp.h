$NetBSD$

Raise the CCP option limit of NetBSD 1.4.1's if_ppp from 32 to 64 bytes, as
the historic MPPE package did: the kernel silently truncated longer options,
and the 1999 MPPE option layout (3 bytes + two 16-byte keys = 35 bytes) did
not fit.  pppd 2.4's 22 bytes fit either way; 64 is what NetBSD itself has
used since 2002.  The kernel must be rebuilt after this change.

--- net/ppp-comp.h.orig
+++ net/ppp-comp.h
@@ -1 +1 @@
-#define CCP_MAX_OPTION_LENGTH	32
+#define CCP_MAX_OPTION_LENGTH	64
