# Decoding throughput, single stream and batched (continuous batching): cutkit-bench-decode.
add_executable(cutkit-bench-decode ${CMAKE_CURRENT_SOURCE_DIR}/bench_decode.c)
target_link_libraries(cutkit-bench-decode PRIVATE cutkit_bench_util cutkit_formats cutkit_model cutkit_tokenizer cutkit_util)
