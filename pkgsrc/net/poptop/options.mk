# $NetBSD$

PKG_OPTIONS_VAR=	PKG_OPTIONS.poptop
PKG_SUPPORTED_OPTIONS=	mppe libwrap
PKG_SUGGESTED_OPTIONS=	mppe

.include "../../mk/bsd.options.mk"

# MPPE through the pppd of net/ppp-mppe (its headers build the pptpd-logwtmp plugin).
.if !empty(PKG_OPTIONS:Mmppe)
.include "../../net/ppp-mppe/buildlink3.mk"
.endif

# Check clients against hosts.allow/hosts.deny with TCP wrappers.
.if !empty(PKG_OPTIONS:Mlibwrap)
CONFIGURE_ARGS+=	--with-libwrap
.include "../../security/tcp_wrappers/buildlink3.mk"
.endif
