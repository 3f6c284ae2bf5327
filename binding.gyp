{
  "target_defaults": {
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node src/native/llama-paths.mjs include)"
    ],
    "libraries": [
      "<!@(node src/native/llama-paths.mjs libs)",
      "-Wl,-rpath,<!(node src/native/llama-paths.mjs rpath)",
      "-Wl,-rpath,'$$ORIGIN/../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64'",
      "-Wl,-rpath,'$$ORIGIN/../../../@node-llama-cpp/linux-x64/bins/linux-x64'"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fexceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_LDFLAGS": ["-Wl,-rpath,<!(node src/native/llama-paths.mjs libdir)"]
    }
  },
  "targets": [
    {
      "target_name": "minedraft",
      "sources": [
        "cpp/addon.cc",
        "cpp/common.cc",
        "cpp/backend.cc",
        "cpp/rpc.cc",
        "cpp/model.cc",
        "cpp/sampling.cc",
        "cpp/sampling_js.cc",
        "cpp/context/bindings.cc",
        "cpp/context/worker.cc",
        "cpp/context/lifecycle.cc",
        "cpp/context/batch.cc",
        "cpp/context/decode_jobs.cc",
        "cpp/context/kv_job.cc",
        "cpp/context/draft_job.cc",
        "cpp/context/verify_job.cc",
        "cpp/context/device_argmax.cc",
        "cpp/context/row_pool.cc"
      ]
    },
    {
      "target_name": "minedraft_synth",
      "sources": [
        "cpp/synth/synth.cc",
        "cpp/synth/addon.cc"
      ]
    }
  ]
}
