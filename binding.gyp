{
  "targets": [
    {
      "target_name": "tap",
      "sources": [
        "native/tap.c",
        "native/tap_steer.c"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "defines": [
        "NAPI_VERSION=8"
      ]
    },
    {
      "target_name": "unix",
      "sources": [
        "native/unix.c",
        "native/ring_napi.c"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "defines": [
        "NAPI_VERSION=8"
      ]
    },
    {
      "target_name": "tapstack_preload",
      "type": "shared_library",
      "product_prefix": "",
      "sources": [
        "native/preload.c",
        "native/preload_api.c",
        "native/preload_sock.c",
        "native/preload_exec.c",
        "native/preload_ring.c",
        "native/preload_dgram.c"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-fvisibility=hidden",
        "-fPIC"
      ],
      "libraries": [
        "-ldl",
        "-lpthread"
      ]
    }
  ]
}
