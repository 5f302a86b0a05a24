"""Per-utterance jobs: one way to split, resume, batch, write and report.

Every command that turns utterances into per-utterance outputs (features, extract,
resynth, kmeans apply) runs through this package; a job module keeps only what is
its own (how to prepare and process a batch, what its outputs are).

    parts.py      work split into parts of whole speakers (`--nj`, `--job K/N`)
    runner.py     UtteranceJob and run_job: skip finished utterances, batch, retry a
                  failed batch one utterance at a time, write, report progress and
                  every failure (speechunits.batch.BatchReport)
    processes.py  parts in local worker processes; worker pools for corpus preparation

    class Squares(UtteranceJob):
        def finished(self, utt): return (out / f"{utt}.npy").is_file()
        def prepare(self, utt, report): return load(utt)        # SpeechUnitsError: utt failed
        def process(self, items): return [x ** 2 for x in items.values()]
        def write(self, utt, result): save_npy(out / f"{utt}.npy", result)   # atomic

    report = run_job(Squares(), utterance_groups(utts, utt2spk), Schedule(batch_size=8))
"""

from speechunits.batch import BatchReport
from speechunits.jobs.parts import check_part, job_part, utterance_groups
from speechunits.jobs.runner import UNNAMEABLE, Schedule, UtteranceJob, run_job

__all__ = ["BatchReport", "Schedule", "UtteranceJob", "run_job", "job_part", "check_part", "utterance_groups",
           "UNNAMEABLE"]
