"""Recipe machinery: option parsing, the local job runner, the Slurm runner, and the
comparison of a run's RESULTS.md with the committed one.

The Slurm runner is checked with a fake `sbatch` that runs the array tasks itself,
the way Slurm would (one process per index, SLURM_ARRAY_TASK_ID set).
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

UTILS = Path(__file__).resolve().parents[2] / "egs" / "utils"


def write_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "run.sh"
    recipe.write_text(
        "stage=0          # first stage to run\n"
        "stop_stage=100   # last stage to run\n"
        "train_config=conf/small.yaml  # model recipe\n"
        f". {UTILS}/parse_options.sh\n"
        'echo "stage=$stage stop=$stop_stage config=$train_config rest=$*"\n'
    )
    return recipe


def test_parse_options_sets_known_and_rejects_unknown(tmp_path):
    recipe = write_recipe(tmp_path)
    out = subprocess.run(["bash", recipe, "--stage", "3", "--train-config=x.yaml", "a", "b"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=3 stop=100 config=x.yaml rest=a b"
    bad = subprocess.run(["bash", recipe, "--stgae", "3"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown option --stgae" in bad.stderr


def test_help_lists_options_with_values(tmp_path):
    recipe = write_recipe(tmp_path)
    out = subprocess.run(["bash", recipe, "--stop-stage", "4", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.startswith("  --")}
    assert lines["--stage"][:1] == ["0"] and lines["--stop-stage"][:1] == ["4"]
    assert "model recipe" in " ".join(lines["--train-config"])


def test_run_local_substitutes_job_and_reports_failures(tmp_path):
    ok = subprocess.run([UTILS / "run_local.sh", "JOB=1:3", "log/x.JOB.log", "bash", "-c", "echo task JOB"],
                        cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for j in (1, 2, 3):
        text = (tmp_path / f"log/x.{j}.log").read_text()
        assert f"task {j}" in text and "# Ended (code 0)" in text
    bad = subprocess.run([UTILS / "run_local.sh", "JOB=1:3", "log/y.JOB.log", "bash", "-c", "test JOB != 2"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "job 2 failed" in bad.stderr and "job 1 failed" not in bad.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/y.2.log").read_text()


def test_run_local_gives_each_job_its_share_of_threads(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cores = len(os.sched_getaffinity(0))  # what nproc counts
    show = ["bash", "-c", 'echo "threads=$OMP_NUM_THREADS"']
    for jobs, max_run, share in ((2, 0, max(1, cores // 2)), (4, 1, None), (1, 0, None)):
        args = [UTILS / "run_local.sh"] + (["--max-jobs-run", str(max_run)] if max_run else [])
        out = subprocess.run(args + [f"JOB=1:{jobs}", "log/t.JOB.log"] + show, cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        expect = f"threads={share}" if share else "threads="
        assert [line for line in (tmp_path / "log/t.1.log").read_text().splitlines()
                if line.startswith("threads=")] == [expect]
    chosen = subprocess.run([UTILS / "run_local.sh", "JOB=1:2", "log/c.JOB.log"] + show, cwd=tmp_path,
                            env={**env, "OMP_NUM_THREADS": "7"}, capture_output=True, text=True)
    assert chosen.returncode == 0 and "threads=7" in (tmp_path / "log/c.2.log").read_text()


def test_slurm_runner_with_fake_sbatch(tmp_path):
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    # A minimal sbatch: parse --array=a-b, run the script once per index, exit non-zero
    # if any task failed (as `sbatch --wait` does).
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'for a in "$@"; do case $a in --array=*) r=${a#--array=};; --*) ;; *) s=$a;; esac; done\n'
        "rc=0; for ((i=${r%-*}; i<=${r#*-}; i++)); do SLURM_ARRAY_TASK_ID=$i bash $s || rc=1; done\n"
        'echo 123; exit $rc\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    ok = subprocess.run([UTILS / "slurm.sh", "JOB=1:2", "log/s.JOB.log", "bash", "-c", "echo hi JOB"],
                        cwd=tmp_path, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "hi 2" in (tmp_path / "log/s.2.log").read_text()
    bad = subprocess.run([UTILS / "slurm.sh", "JOB=1:2", "log/t.JOB.log", "bash", "-c", "test JOB = 1"],
                         cwd=tmp_path, capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "job 2 failed" in bad.stderr


RESULTS = """# Results

Command: `egs/x/run.sh` (stages 0-8 of this run took 5.7 min on 2 cores)

## ABX

| system | triphone, within spk | triphone, across spk |
|---|---:|---:|
| mfcc | {mfcc} | 5.21 |
| small dense | 3.02 | 3.25 |
| (triplets scored) | 2236 | {triplets} |

ABX error in %.

## Training

| model | steps | wall min | dev loss | codes used | code perplexity |
|---|---:|---:|---:|---:|---:|
| small | 1000 | {wall} | 2.026 (1000) | 64 | 54.6 |
"""


def test_compare_results_prints_this_run_beside_the_committed_figures(tmp_path):
    run, committed = tmp_path / "run.md", tmp_path / "committed.md"
    run.write_text(RESULTS.format(mfcc="1.60", triplets=4460, wall=4.4))
    committed.write_text(RESULTS.format(mfcc="1.57", triplets=4455, wall=4.2))
    out = subprocess.run([sys.executable, UTILS / "compare_results.py", run, committed], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"Key figures of {run} vs the committed {committed}:"
    assert "  mfcc             1.60 / 1.57   5.21 / 5.21" in lines
    assert "  small            2.026 (1000) / 2.026 (1000)   64 / 64   54.6 / 54.6" in lines
    assert not any("triplets" in line or "4.4" in line for line in lines)  # counts and timings are not figures
    assert lines[-1].startswith("6 of 7 figures equal the committed ones")
    same = subprocess.run([sys.executable, UTILS / "compare_results.py", committed, committed], capture_output=True, text=True)
    assert same.stdout.splitlines()[-1] == "7 of 7 figures equal the committed ones"
    gone = subprocess.run([sys.executable, UTILS / "compare_results.py", run, tmp_path / "none.md"], capture_output=True, text=True)
    assert gone.returncode == 0 and "no committed" in gone.stdout


def _abx_file(folder: Path, rep: str, level: str, speaker: str, score: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rep}.{level}.{speaker}.json").write_text(f'{{"score": {score}}}')


def test_summarize_results_seeds_table_gives_mean_sd_and_ratios(tmp_path):
    """--seeds NAME=A,B,C: mean and sample standard deviation of each cell over the runs
    (checked against Python's statistics module) and the means over the baselines'."""
    import json
    import statistics

    exp = tmp_path / "exp"
    for level in ("phone", "triphone"):
        for speaker in ("within", "across"):
            _abx_file(exp / "mfcc" / "abx", "mfcc", level, speaker, 20.0)
            _abx_file(exp / "kmeans-mfcc" / "abx", "codes", level, speaker, 40.0)
    (exp / "kmeans-mfcc" / "unit_metrics.json").write_text(json.dumps({"pnmi": 0.3, "codebook_size": 100}))
    dense = {"s0": 15.0, "s1": 16.5, "s2": 17.1}
    pnmi = {"s0": 0.33, "s1": 0.36, "s2": 0.34}
    for name in dense:
        for level in ("phone", "triphone"):
            for speaker in ("within", "across"):
                _abx_file(exp / name / "abx", "dense", level, speaker, dense[name])
                _abx_file(exp / name / "abx", "codes", level, speaker, 2 * dense[name])
        (exp / name / "unit_metrics.json").write_text(json.dumps({"pnmi": pnmi[name], "codebook_size": 100}))
    out = subprocess.run(
        [sys.executable, UTILS / "summarize_results.py", exp, "--systems", "mfcc", "kmeans-mfcc", "s0",
         "--seeds", "m=s0,s1,s2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.stdout.splitlines() if line.startswith("| m ")}
    d = list(dense.values())
    mean_sd = f"{statistics.fmean(d):.2f} ± {statistics.stdev(d):.2f}"
    assert rows["m dense (3 seeds)"][:4] == [mean_sd] * 4
    assert rows["m dense: mean / MFCC"][:4] == [f"{statistics.fmean(d) / 20:.2f}"] * 4
    assert rows["m units: mean / k-means on MFCC"] == [f"{2 * statistics.fmean(d) / 40:.2f}"] * 4 + [
        f"{statistics.fmean(pnmi.values()) / 0.3:.2f}"]
    assert rows["m units (3 seeds)"][4] == f"{statistics.fmean(pnmi.values()):.3f} ± {statistics.stdev(pnmi.values()):.3f}"
    bad = subprocess.run([sys.executable, UTILS / "summarize_results.py", exp, "--seeds", "m=s0,nope"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_summarize_results_seeds_table_refuses_ratios_at_another_k(tmp_path):
    import json

    exp = tmp_path / "exp"
    _abx_file(exp / "kmeans-mfcc" / "abx", "codes", "phone", "across", 40.0)
    (exp / "kmeans-mfcc" / "unit_metrics.json").write_text(json.dumps({"pnmi": 0.3, "codebook_size": 100}))
    for name in ("a", "b"):
        _abx_file(exp / name / "abx", "codes", "phone", "across", 30.0)
        (exp / name / "unit_metrics.json").write_text(json.dumps({"pnmi": 0.4, "codebook_size": 50}))
    out = subprocess.run([sys.executable, UTILS / "summarize_results.py", exp, "--systems", "kmeans-mfcc",
                          "--seeds", "m=a,b"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| m units: K=50, not the baseline's K=100 |" in out.stdout
    assert "mean / k-means on MFCC" not in out.stdout


def _shared_stages(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`script` run in bash after sourcing the shared stage helpers (recipe_lib.sh,
    model_stages.sh), with a stub start_recipe and the variables the stages read."""
    prelude = (
        f". {UTILS}/log.sh; . {UTILS}/recipe_lib.sh; . {UTILS}/model_stages.sh\n"
        "start_recipe() { :; }\n"
        f"exp={tmp_path}/exp feats={tmp_path}/feats train_set=train eval_sets=dev stage_n=3 seed=0 device=cpu\n"
        f"cmd={UTILS}/run_local.sh models= train_opts={UTILS.parent}/conf/train_cpu.conf\n"
    )
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + prelude + script], capture_output=True, text=True)


def test_shared_stages_list_check_and_refuse_extra_baselines(tmp_path):
    out = _shared_stages('unit_k=100 extra_baselines="mfcc-nolifter:mfcc_nolifter_dd"; echo $(baseline_systems)', tmp_path)
    assert out.stdout.split() == ["mfcc", "kmeans-mfcc", "mfcc-nolifter", "kmeans-mfcc-nolifter"], out.stderr
    out = _shared_stages('unit_k= extra_baselines="x:y"; echo $(baseline_systems); is_baseline x && ! is_baseline kmeans-x', tmp_path)
    assert out.returncode == 0 and out.stdout.split() == ["mfcc", "x"], out.stderr
    # the k-means of a baseline whose features were never computed: named, and the stage fails
    out = _shared_stages('unit_k=4 extra_baselines="b:btype"; kmeans_baseline_units b btype', tmp_path)
    assert out.returncode != 0 and f"no btype features in {tmp_path}/feats/train for the b baseline" in out.stderr
    for bad in ("nocolon", ":type", "name:"):
        out = _shared_stages(f'unit_k=4 extra_baselines="{bad}"; start_model_recipe', tmp_path)
        assert out.returncode != 0 and "is not NAME:TYPE" in out.stderr, bad
    (tmp_path / "models.txt").write_text("kmeans-b model.jitter=0\n")
    out = _shared_stages(f'unit_k=4 extra_baselines="b:t" models=kmeans-b models_conf={tmp_path}/models.txt; '
                         "start_model_recipe", tmp_path)
    assert out.returncode != 0 and "kmeans-b is the name of a baseline system" in out.stderr
