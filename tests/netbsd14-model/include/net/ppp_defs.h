#ifndef _MODEL_NET_PPP_DEFS_H_
#define _MODEL_NET_PPP_DEFS_H_
#define PPP_HDRLEN	4
#define PPP_ALLSTATIONS	0xff
#define PPP_UI		0x03
#define PPP_COMP	0xfd
struct compstat {
	unsigned int unc_bytes;
	unsigned int unc_packets;
	unsigned int comp_bytes;
	unsigned int comp_packets;
	unsigned int inc_bytes;
	unsigned int inc_packets;
	unsigned int ratio;
};
#endif
