# $NetBSD$

PKG_OPTIONS_VAR=	PKG_OPTIONS.ppp-mppe
PKG_SUPPORTED_OPTIONS=	ppp-mppe-kmod
PLIST_VARS+=	kmod

.include "../../mk/bsd.prefs.mk"

# ppp-mppe-kmod is on by default only where it builds without extra setup.
.if ${OPSYS} == "Linux"
PKG_SUGGESTED_OPTIONS+=	ppp-mppe-kmod
.endif

.include "../../mk/bsd.options.mk"

# MPPE kernel modules, built against the kernel sources in SYSDIR.
.if !empty(PKG_OPTIONS:Mppp-mppe-kmod)
PLIST.kmod=	yes
# The kernel module is built against the kernel sources in SYSDIR; the kernel-side
# patches in files/kmod/ are applied to a copy of the files they touch, never to SYSDIR.
.  if ${OPSYS} == "Linux"
SYSDIR?=	/usr/src/linux
KMOD_SYSDIR_CHECK=	${SYSDIR}/drivers/net/ppp/ppp_generic.c
KMOD_BUILDDIR?=	/lib/modules/${KMOD_KVER}/build
KMOD_KVER?=	${:!${UNAME} -r!}
.  elif ${OPSYS} == "NetBSD"
SYSDIR?=	/usr/src/sys
KMOD_SYSDIR_CHECK=	${SYSDIR}/modules/xldscripts/kmodule
KMOD_KVER?=	${OS_VERSION}
.  else
PKG_FAIL_REASON+=	"The MPPE kernel module of ${PKGNAME} is not supported on ${OPSYS}." \
			"Build without it: PKG_OPTIONS.ppp-mppe=-ppp-mppe-kmod"
.  endif
.  if defined(KMOD_SYSDIR_CHECK) && !exists(${KMOD_SYSDIR_CHECK})
PKG_FAIL_REASON+=	"${PKGNAME} needs the kernel sources in SYSDIR (${SYSDIR}) to build" \
			"the MPPE kernel module: ${KMOD_SYSDIR_CHECK} is missing." \
			"Set SYSDIR=/path/to/kernel/sources, or build without the module:" \
			"PKG_OPTIONS.ppp-mppe=-ppp-mppe-kmod"
.  endif
KMOD_WRKDIR=	${WRKDIR}/kmod
KMOD_FILES=	drivers/net/ppp/ppp_generic.c drivers/net/ppp/ppp_mppe.c include/uapi/linux/ppp-comp.h
KMOD_PATCHES=	${FILESDIR}/kmod/patch-ca

post-patch: kmod-patch
.PHONY: kmod-patch
kmod-patch:
	${RUN} ${MKDIR} ${KMOD_WRKDIR}
.  if ${OPSYS} == "Linux"
	${RUN} cd ${SYSDIR} && ${PAX} -rw -pp ${KMOD_FILES} ${KMOD_WRKDIR}
	${RUN} for p in ${KMOD_PATCHES}; do \
		${PATCH} -d ${KMOD_WRKDIR} -N -s -p0 ${PATCH_FUZZ_FACTOR} < $$p || exit 1; \
	done
.  endif
	${RUN} cd ${FILESDIR}/kmod-src && ${PAX} -rw -pp . ${KMOD_WRKDIR}

post-build: kmod-build
.PHONY: kmod-build
kmod-build:
.  if ${OPSYS} == "Linux"
	${RUN} ${ECHO} 'obj-m := ppp_generic.o ppp_mppe.o' > ${KMOD_WRKDIR}/drivers/net/ppp/Kbuild
	${RUN} cd ${KMOD_WRKDIR}/drivers/net/ppp && ${MAKE_PROGRAM} -C ${KMOD_BUILDDIR} M=${KMOD_WRKDIR}/drivers/net/ppp NOSTDINC_FLAGS=-I${KMOD_WRKDIR}/include/uapi modules
.  endif
.  if ${OPSYS} == "NetBSD"
	${RUN} ${CP} ${SYSDIR}/modules/Makefile.inc ${KMOD_WRKDIR}/Makefile.inc
	${RUN} cd ${KMOD_WRKDIR}/ppp_mppe && ${MAKE_PROGRAM} S=${SYSDIR} NETBSDSRCDIR=${SYSDIR}/.. USETOOLS=no
.  endif

post-install: kmod-install
.PHONY: kmod-install
kmod-install:
.  if ${OPSYS} == "Linux"
	${RUN} ${INSTALL_DATA_DIR} ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/extra
	${RUN} ${INSTALL_DATA} ${KMOD_WRKDIR}/drivers/net/ppp/ppp_generic.ko ${KMOD_WRKDIR}/drivers/net/ppp/ppp_mppe.ko ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/extra
.  endif
.  if ${OPSYS} == "NetBSD"
	${RUN} ${INSTALL_DATA_DIR} ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/ppp_mppe
	${RUN} ${INSTALL_DATA} ${KMOD_WRKDIR}/ppp_mppe/ppp_mppe.kmod ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/ppp_mppe
.  endif
.endif
