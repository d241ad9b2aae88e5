#define EINVAL	22
#define ENOENT	2
#define EBUSY	16
#define EEXIST	17
#define ENOSPC	28
