#ifndef _MODEL_SYS_TYPES_H_
#define _MODEL_SYS_TYPES_H_
typedef unsigned char	u_int8_t;
typedef unsigned short	u_int16_t;
typedef unsigned int	u_int32_t;
typedef unsigned char	u_char;
typedef unsigned short	u_short;
typedef unsigned int	u_int;
typedef unsigned long	u_long;
typedef unsigned long	size_t;
typedef char		*caddr_t;
#define NULL	((void *)0)
#endif
