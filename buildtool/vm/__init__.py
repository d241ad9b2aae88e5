"""The VM harness: guest image, VMM, framed console, guest OS classes, topologies, `buildtool test`."""
