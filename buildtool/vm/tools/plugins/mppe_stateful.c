/*
 * mppe_stateful.so: a pppd plugin for the VM scenarios that makes pppd *request* stateful MPPE.
 *
 * pppd 2.4.9 always requests stateless MPPE; its `mppe-stateful` option only lets it accept a peer
 * that asks for stateful mode (as some Windows peers did). So two pppds never negotiate stateful MPPE
 * by themselves. Loaded on both ends (after `require-mppe-N` and with `mppe-stateful`), this plugin
 * clears the H (stateless) bit of the CCP request, as such a peer would, so the stateful kernel code
 * paths (a key change every 256 packets, discard + CCP Reset-Request after a loss) run in the tests.
 *
 * Built by the guest image builder against the pppd headers of our ppp-mppe package:
 *   gcc -shared -fPIC -I/usr/pkg/include -o /usr/local/lib/pppd/mppe_stateful.so mppe_stateful.c
 */
#include <pppd/pppd.h>
#include <pppd/fsm.h>
#include <pppd/ccp.h>
#include <pppd/mppe.h>

char pppd_version[] = VERSION;

void plugin_init(void)
{
	ccp_wantoptions[0].mppe |= MPPE_OPT_STATEFUL;
	info("mppe_stateful plugin: requesting stateful MPPE");
}
