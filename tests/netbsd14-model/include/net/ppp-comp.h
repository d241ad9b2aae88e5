#ifndef _MODEL_NET_PPP_COMP_H_
#define _MODEL_NET_PPP_COMP_H_
/* the ppp-2.3 compressor interface as NetBSD 1.4.1 has it: no list entry, no reference count */
#ifdef PACKETPTR
struct compressor {
	int	compress_proto;
	void	*(*comp_alloc)(u_char *, int);
	void	(*comp_free)(void *);
	int	(*comp_init)(void *, u_char *, int, int, int, int);
	void	(*comp_reset)(void *);
	int	(*compress)(void *, PACKETPTR *, PACKETPTR, int, int);
	void	(*comp_stat)(void *, struct compstat *);
	void	*(*decomp_alloc)(u_char *, int);
	void	(*decomp_free)(void *);
	int	(*decomp_init)(void *, u_char *, int, int, int, int, int);
	void	(*decomp_reset)(void *);
	int	(*decompress)(void *, PACKETPTR, PACKETPTR *);
	void	(*incomp)(void *, PACKETPTR);
	void	(*decomp_stat)(void *, struct compstat *);
};
#endif
#define DECOMP_OK		0
#define DECOMP_ERROR		1
#define DECOMP_FATALERROR	2
#define CCP_MAX_OPTION_LENGTH	32
#define CI_MPPE			18
#endif
