#ifndef _MODEL_SYS_MALLOC_H_
#define _MODEL_SYS_MALLOC_H_
#define M_DEVBUF	2
#define M_WAITOK	0x0000
#define M_NOWAIT	0x0001
void	*malloc(unsigned long, int, int);
void	free(void *, int);
#endif
