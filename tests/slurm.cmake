# scripts/slurm/pretrain.sbatch without Slurm (tests/slurm_sbatch.sh): its
# SLURM_* variables set by hand, srun and scontrol replaced by recorders
# (srun starts the tasks with mpirun); ddpt runs for real. SIGTERM ->
# checkpoint -> scontrol requeue -> the next start resumes. About 10 s.
add_test(NAME slurm_sbatch_requeue_resume
         COMMAND ${CMAKE_SOURCE_DIR}/tests/slurm_sbatch.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(slurm_sbatch_requeue_resume PROPERTIES LABELS "mpi" TIMEOUT 180)
