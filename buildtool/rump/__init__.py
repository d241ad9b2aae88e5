"""The rump lane: NetBSD's own kernel code (if_ppp, its tty line discipline, mbufs) run as Linux user-space
libraries, with our ppp_mppe compiled into it from the same sources as the .kmod.

`kernel` builds the rump kernel once into the cache, `component` builds our two components against it, and
`lane` runs the scenarios (`buildtool test --kernel netbsd-rump`).
"""
