"""The experiment report: collect an experiment folder's results, plot them, write md + html.

collect.py   what the experiment folder holds (conventions for metrics, probes, ABX, unit metrics, units)
plots.py     training curves, code-phone co-occurrence heatmap, segmentation over a spectrogram
writer.py    write_report: report.md + self-contained report.html + figures/*.png
"""

from speechunits.eval.report.collect import ExperimentParts, collect
from speechunits.eval.report.writer import ReportConfig, ReportOutput, write_report

__all__ = ["ExperimentParts", "collect", "ReportConfig", "ReportOutput", "write_report"]
