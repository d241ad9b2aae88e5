#ifndef _MODEL_SYS_MBUF_H_
#define _MODEL_SYS_MBUF_H_
#include <sys/types.h>
struct pkthdr {
	void	*rcvif;
	int	len;
};
struct mbuf {
	struct mbuf	*m_next;
	struct mbuf	*m_nextpkt;
	caddr_t		m_data;
	int		m_len;
	short		m_type;
	short		m_flags;
	struct pkthdr	m_pkthdr;
};
#define M_EXT		0x0001
#define M_PKTHDR	0x0002
#define M_DONTWAIT	1
#define M_WAIT		0
#define MT_DATA		1
#define mtod(m, t)	((t)((m)->m_data))
struct mbuf *m_gethdr(int, int);
void	m_clget(struct mbuf *, int);
#define MGETHDR(m, how, type)	((m) = m_gethdr((how), (type)))
#define MCLGET(m, how)		m_clget((m), (how))
void	m_freem(struct mbuf *);
void	m_copydata(struct mbuf *, int, int, caddr_t);
#endif
