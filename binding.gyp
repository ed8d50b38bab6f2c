{
  "targets": [
    {
      "target_name": "l4nat",
      "sources": [
        "native/addon.c",
        "native/addon_args.c",
        "native/addon_flows.c",
        "native/addon_probe_trace.c",
        "native/addon_sync.c",
        "native/addon_layout.c",
        "native/worker.c",
        "native/watchdog.c",
        "native/steering.c",
        "native/flows.c",
        "native/probe_tx.c",
        "native/tun.c",
        "native/tracing.c",
        "native/flow_file.c",
        "native/sync.c",
        "native/core/csum.h",
        "native/core/packet.c",
        "native/core/siphash.c",
        "native/core/tables.c",
        "native/core/flow_table.c",
        "native/core/flow_segment.c",
        "native/core/flow_query.c",
        "native/core/explain.c",
        "native/core/probe.c",
        "native/core/refuse.c",
        "native/core/dataplane.c",
        "native/core/ratelimit.c",
        "native/core/coalesce.c",
        "native/core/trace.c",
        "native/core/sync_log.c"
      ],
      "include_dirs": ["native"],
      "cflags": ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-fno-strict-aliasing"],
      "cflags!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
