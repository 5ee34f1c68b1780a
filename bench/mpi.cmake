# Data-parallel training throughput (bench/run_mpi.sh): trainer_run on random sequences, one
# process or under mpirun when built with -DCUTKIT_MPI=ON.
add_executable(cutkit-bench-mpi ${CMAKE_CURRENT_SOURCE_DIR}/bench_mpi.c)
target_link_libraries(cutkit-bench-mpi PRIVATE cutkit_bench_util cutkit_train cutkit_datasets cutkit_formats cutkit_model cutkit_tokenizer cutkit_util)
