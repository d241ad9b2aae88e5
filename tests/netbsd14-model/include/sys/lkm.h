#ifndef _MODEL_SYS_LKM_H_
#define _MODEL_SYS_LKM_H_
#include <sys/errno.h>
#define LKM_VERSION	1
#define LM_MISC		5
#define LKM_E_LOAD	1
#define LKM_E_UNLOAD	2
#define LKM_E_STAT	3
struct lkm_any {
	int	lkm_type;
	int	lkm_ver;
	char	*lkm_name;
};
struct lkm_misc {
	int	lkm_type;
	int	lkm_ver;
	char	*lkm_name;
	u_long	lkm_offset;
};
struct lkm_table {
	int	type;
	union {
		struct lkm_any	*lkm_any;
	} private;
};
int	lkmdispatch(struct lkm_table *, int);
int	lkm_nofunc(struct lkm_table *, int);
#define MOD_MISC(name)							\
	static struct lkm_misc _module = {				\
		LM_MISC, LKM_VERSION, name, 0				\
	};
#define DISPATCH(lkmtp, cmd, ver, load, unload, stat)			\
	if ((ver) != LKM_VERSION)					\
		return EINVAL;						\
	switch (cmd) {							\
	case LKM_E_LOAD:						\
		(lkmtp)->private.lkm_any = (struct lkm_any *)&_module;	\
		{ int error_ = load((lkmtp), (cmd));			\
		if (error_ != 0) return error_; }			\
		break;							\
	case LKM_E_UNLOAD:						\
		{ int error_ = unload((lkmtp), (cmd));			\
		if (error_ != 0) return error_; }			\
		break;							\
	case LKM_E_STAT:						\
		{ int error_ = stat((lkmtp), (cmd));			\
		if (error_ != 0) return error_; }			\
		break;							\
	}								\
	return lkmdispatch((lkmtp), (cmd));
#endif
