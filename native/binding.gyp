{
  "targets": [
    {
      "target_name": "snap_native",
      "sources": [
        "src/addon.c",
        "src/util.c",
        "src/fastcdc.c",
        "src/cutter.c",
        "src/aead.c",
        "src/sha256.c",
        "src/posix.c",
        "src/scandir.c",
        "src/readfiles.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags!": ["-O2", "-O0"],
      "libraries": ["-lm"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=gnu11", "-fvisibility=hidden"]
      }
    }
  ]
}
