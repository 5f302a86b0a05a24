# How stages run their jobs. Local processes by default; on a Slurm cluster use
#   export train_cmd="utils/slurm.sh --sbatch-opts '--partition=cpu --mem=8G'"
# (or set SPEECHUNITS_SBATCH_OPTS). Every runner takes: JOB=1:N LOG CMD ARGS...
export cmd=${cmd:-utils/run_local.sh}
export train_cmd=${train_cmd:-$cmd}
