#!/bin/sh
# scripts/slurm/pretrain.sbatch without Slurm: the script runs as sbatch
# would run it (its SLURM_* variables set by hand), with stand-ins for
# Slurm's own commands only: `srun` records its arguments and starts the
# tasks with mpirun (SLURM_NTASKS of them), `scontrol` records its
# arguments. ddpt and mpirun run for real.
#  1. It starts 2 ranks x 1 thread (SLURM_NTASKS, SLURM_CPUS_PER_TASK)
#     through `srun --mpi=pmix --cpus-per-task=1`.
#  2. SIGTERM to the batch script (what --signal=B:TERM sends), which sends
#     SIGUSR1 to the launcher: the ranks checkpoint and stop (STATUS
#     "stopped step=N"), and the script calls `scontrol requeue JOB_ID`.
#  3. Run again (the requeued job): it resumes from RUN_DIR with --resume
#     and reaches the end; a third start sees STATUS "done" and runs nothing.
#  4. Without SLURM_NTASKS it stops at once with one line saying so.
# usage: slurm_sbatch.sh DDPT MPIRUN
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
sbatch=$(cd "$(dirname "$0")/.." && pwd)/scripts/slurm/pretrain.sbatch
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"

mkdir "$dir/bin"
cat >"$dir/bin/srun" <<EOF
#!/bin/sh
echo "srun \$*" >>"$dir/calls"
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
exec "$mpirun" --allow-run-as-root --oversubscribe -np "\$SLURM_NTASKS" "\$@"
EOF
printf '#!/bin/sh\necho "scontrol $*" >>"%s/calls"\n' "$dir" >"$dir/bin/scontrol"
chmod +x "$dir/bin/srun" "$dir/bin/scontrol"

job() { # runs the batch script as Slurm would, in the background: $pid
  env PATH="$dir/bin:$PATH" DDPT="$ddpt" SLURM_JOB_ID=4242 SLURM_NTASKS=2 SLURM_CPUS_PER_TASK=1 \
    SLURM_JOB_NUM_NODES=1 "$@" &
  pid=$!
}
opts="--set data.corpus=$dir/corpus --set log.every=1 --set log.eval_every=0 --set checkpoint.every=0 \
  --set train.batch_size=4"

# 1 and 2: start, then SIGTERM to the batch script once steps are logged.
# shellcheck disable=SC2086
job bash "$sbatch" "$dir/tiny.ini" "$dir/run" $opts --set train.steps=1000000 >"$dir/first.out" 2>&1
wait_for $pid "$dir/first.out" "the job did not start training" logged_step "$dir/run/metrics.jsonl" 5
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$dir/first.out"; fail "the batch script exited $rc after SIGTERM, want 0 (requeued)"; }
grep -q "^srun --mpi=pmix --cpus-per-task=1 --kill-on-bad-exit=1 $ddpt train $dir/tiny.ini --run-dir $dir/run --threads 1 " \
  "$dir/calls" || { cat "$dir/calls"; fail "srun was not called with pmix, 1 cpu per task and the config"; }
grep -q "^world: 2 rank(s) x 1 thread(s)" "$dir/first.out" || { cat "$dir/first.out"; fail "not 2 ranks x 1 thread"; }
grep -q "^stopped step=" "$dir/run/STATUS" || { cat "$dir/first.out"; fail "STATUS is '$(cat "$dir/run/STATUS")'"; }
stopped=$(sed 's/^stopped step=//' "$dir/run/STATUS")
[ -f "$dir/run/$(cat "$dir/run/LATEST")" ] || fail "no checkpoint named by LATEST"
grep -q "^scontrol requeue 4242$" "$dir/calls" || { cat "$dir/calls"; fail "no scontrol requeue 4242"; }
echo "slurm_sbatch: SIGTERM -> checkpoint at step $stopped, scontrol requeue 4242"

# 3: the requeued job resumes and finishes; a further start runs nothing.
end=$((stopped + 3))
# shellcheck disable=SC2086
job bash "$sbatch" "$dir/tiny.ini" "$dir/run" $opts --set train.steps=$end >"$dir/second.out" 2>&1
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$dir/second.out"; fail "the requeued job exited $rc"; }
grep -q "^srun .* $ddpt train --resume $dir/run --threads 1 " "$dir/calls" ||
  { cat "$dir/calls"; fail "the requeued job did not resume with --resume"; }
[ "$(cat "$dir/run/STATUS")" = "done step=$end" ] ||
  { cat "$dir/second.out"; fail "after resuming, STATUS is '$(cat "$dir/run/STATUS")', want 'done step=$end'"; }
grep -q "\"step\":$((stopped + 1))," "$dir/run/metrics.jsonl" || fail "step $((stopped + 1)) was not trained after the resume"
[ "$(grep -c "^scontrol" "$dir/calls")" -eq 1 ] || { cat "$dir/calls"; fail "a finished job was requeued"; }
calls=$(wc -l <"$dir/calls")
job bash "$sbatch" "$dir/tiny.ini" "$dir/run" >"$dir/third.out" 2>&1
wait $pid || fail "a start after the end failed"
[ "$(wc -l <"$dir/calls")" -eq "$calls" ] || fail "a finished run was started again"
echo "slurm_sbatch: requeued job resumed from step $stopped to $end; a further start ran nothing"

# 4: no task count
if env -u SLURM_NTASKS SLURM_JOB_ID=1 PATH="$dir/bin:$PATH" bash "$sbatch" "$dir/tiny.ini" "$dir/other" \
  >"$dir/bad.out" 2>&1; then fail "ran without SLURM_NTASKS"; fi
grep -q "^pretrain.sbatch: SLURM_NTASKS is not set" "$dir/bad.out" || { cat "$dir/bad.out"; fail "no clear line"; }
echo "slurm_sbatch: ok"
