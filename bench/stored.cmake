# A 7B-shaped model held as bf16 / int8: open time, peak RSS, one ARC-shaped question, 32
# generated tokens, one LoRA CUT-shaped update: cutkit-bench-stored, see bench/run_big.sh.
add_executable(cutkit-bench-stored ${CMAKE_CURRENT_SOURCE_DIR}/bench_stored.c)
target_link_libraries(cutkit-bench-stored PRIVATE cutkit_formats cutkit_model cutkit_tokenizer cutkit_util)
