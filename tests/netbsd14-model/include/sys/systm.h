#ifndef _MODEL_SYS_SYSTM_H_
#define _MODEL_SYS_SYSTM_H_
#include <sys/types.h>
void	bcopy(const void *, void *, size_t);
void	bzero(void *, size_t);
int	bcmp(const void *, const void *, size_t);
void	log(int, const char *, ...);
int	printf(const char *, ...);
#endif
