# Layer products on each backend (OpenBLAS, oneDNN fp32 / bf16, our gemv), GFLOP/s:
# cutkit-bench-products, see bench/README.md.
add_executable(cutkit-bench-products ${CMAKE_CURRENT_SOURCE_DIR}/bench_products.c)
target_link_libraries(cutkit-bench-products PRIVATE cutkit_bench_util cutkit_model cutkit_util)
