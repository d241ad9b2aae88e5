# $NetBSD$

BUILDLINK_TREE+=	ppp-mppe

.if !defined(PPP_MPPE_BUILDLINK3_MK)
PPP_MPPE_BUILDLINK3_MK:=

BUILDLINK_API_DEPENDS.ppp-mppe+=	ppp-mppe>=2.4.9
BUILDLINK_PKGSRCDIR.ppp-mppe?=	../../net/ppp-mppe
.endif	# PPP_MPPE_BUILDLINK3_MK

BUILDLINK_TREE+=	-ppp-mppe
