"""buildtool: fetch, patch, build, package and VM-test the PPTP/MPPE stack (ppp-mppe, poptop)."""

__version__ = "0.1.0"
