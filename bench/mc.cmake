# Multiple-choice scoring throughput against PyTorch: bench/run_mc.sh.
add_executable(cutkit-bench-mc ${CMAKE_CURRENT_SOURCE_DIR}/bench_mc.c)
target_link_libraries(cutkit-bench-mc PRIVATE cutkit_bench_util cutkit_eval cutkit_formats cutkit_model cutkit_tokenizer cutkit_util)
