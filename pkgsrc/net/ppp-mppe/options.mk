# $NetBSD$

PKG_OPTIONS_VAR=	PKG_OPTIONS.ppp-mppe
PKG_SUPPORTED_OPTIONS=	ppp-mppe-kmod

# Default of ppp-mppe-kmod: off on every OPSYS. A kernel module fits exactly one kernel release, and
# building it needs that kernel's sources (SYSDIR) and build tree (KMOD_BUILDDIR), which pkgsrc
# cannot fetch. So `make package` with no settings builds pppd everywhere, and the modules are built
# on request for a kernel the user names.
PLIST_VARS+=	kmod

.include "../../mk/bsd.prefs.mk"

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
KMOD_CC?=	${CCPATH:U/usr/bin/gcc}
KMOD_KVER?=	${:!${UNAME} -r!}
KMOD_MAKE_ARGS?=
KMOD_MODINFO?=	/sbin/modinfo
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
KMOD_FILES=	drivers/net/ppp/ppp_generic.c include/uapi/linux/ppp-comp.h
KMOD_PATCHES=	${FILESDIR}/kmod/patch-ca

USE_TOOLS+=	patch

post-patch: kmod-patch
.PHONY: kmod-patch
kmod-patch:
	${RUN} ${MKDIR} ${KMOD_WRKDIR}
.  if ${OPSYS} == "Linux"
	${RUN} ${MKDIR} ${KMOD_FILES:H:O:u:S,^,${KMOD_WRKDIR}/,}
	${RUN} for f in ${KMOD_FILES}; do \
		${CP} ${SYSDIR}/"$$f" ${KMOD_WRKDIR}/"$$f" || exit 1; \
	done
	${RUN} for p in ${KMOD_PATCHES}; do \
		${PATCH} -d ${KMOD_WRKDIR} -N -s -p0 < "$$p" || exit 1; \
	done
.  endif
	${RUN} ${CP} -R ${FILESDIR}/kmod-src/. ${KMOD_WRKDIR}/

post-build: kmod-build
.PHONY: kmod-build
kmod-build:
.  if ${OPSYS} == "Linux"
	${RUN} ${ECHO} 'NOSTDINC_FLAGS += -I${KMOD_WRKDIR}/include' > ${KMOD_WRKDIR}/drivers/net/ppp/Kbuild
	${RUN} ${ECHO} 'obj-m := ppp_generic.o' >> ${KMOD_WRKDIR}/drivers/net/ppp/Kbuild
	${RUN} ${SETENV} MAKEFLAGS= ${MAKE_PROGRAM} -C ${KMOD_BUILDDIR} ${KMOD_MAKE_ARGS} M=${KMOD_WRKDIR}/drivers/net/ppp KERNELRELEASE=${KMOD_KVER} CC=${KMOD_CC:Q} modules
	${RUN} ${MKDIR} ${KMOD_WRKDIR}/mppe-linux && ${CP} -R ${KMOD_WRKDIR}/ppp_mppe/core ${KMOD_WRKDIR}/ppp_mppe/linux ${KMOD_WRKDIR}/mppe-linux/
	${RUN} ${ECHO} 'obj-m := ppp_mppe.o' > ${KMOD_WRKDIR}/mppe-linux/Kbuild
	${RUN} ${ECHO} 'ppp_mppe-y := linux/mppe_linux.o core/mppe.o core/rc4.o core/sha1.o' >> ${KMOD_WRKDIR}/mppe-linux/Kbuild
	${RUN} ${ECHO} 'ccflags-y += -I$$(src)/linux -I$$(src)/core' >> ${KMOD_WRKDIR}/mppe-linux/Kbuild
	${RUN} ${SETENV} MAKEFLAGS= ${MAKE_PROGRAM} -C ${KMOD_BUILDDIR} ${KMOD_MAKE_ARGS} M=${KMOD_WRKDIR}/mppe-linux KERNELRELEASE=${KMOD_KVER} CC=${KMOD_CC:Q} modules
	${RUN} for m in drivers/net/ppp/ppp_generic mppe-linux/ppp_mppe; do v=`${KMOD_MODINFO} -F vermagic ${KMOD_WRKDIR}/"$$m".ko`; case "$$v" in "${KMOD_KVER} "*) ;; *) ${ECHO} "$$m.ko: vermagic '$$v' is not for ${KMOD_KVER}" 1>&2; exit 1;; esac; done
	${RUN} i=`${KMOD_MODINFO} -F implementation ${KMOD_WRKDIR}/mppe-linux/ppp_mppe.ko`; case "$$i" in buildtool*) ;; *) ${ECHO} 'mppe-linux/ppp_mppe.ko is not our ppp_mppe (no modinfo implementation field)' 1>&2; exit 1;; esac
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
	${RUN} ${INSTALL_DATA} ${KMOD_WRKDIR}/drivers/net/ppp/ppp_generic.ko ${KMOD_WRKDIR}/mppe-linux/ppp_mppe.ko ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/extra
.  endif
.  if ${OPSYS} == "NetBSD"
	${RUN} ${INSTALL_DATA_DIR} ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/ppp_mppe
	${RUN} ${INSTALL_DATA} ${KMOD_WRKDIR}/ppp_mppe/ppp_mppe.kmod ${DESTDIR}${PREFIX}/lib/modules/${KMOD_KVER}/ppp_mppe
.  endif
.endif
