# CUT training steps against MLE steps and PyTorch's CUT step: bench/run_cut.sh.
add_executable(cutkit-bench-cut ${CMAKE_CURRENT_SOURCE_DIR}/bench_cut.c)
target_link_libraries(cutkit-bench-cut PRIVATE cutkit_bench_util cutkit_train cutkit_datasets cutkit_formats cutkit_model cutkit_tokenizer cutkit_util)
