#define LOG_INFO	6
#define LOG_DEBUG	7
