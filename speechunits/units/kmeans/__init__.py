"""Baseline units: k-means on any feature dir (MFCC, fbank, or a model tap's dense/).

    model.py   KMeans: centroids (K, D) with fit / predict / distances, save / load
    lloyd.py   the tensor algorithms: distances, greedy k-means++, Lloyd passes, re-seeding
    frames.py  reading and checking one utterance's frames; utterance lists
    fit.py     KMeansConfig, fit_kmeans: a seeded frame sample, k-means++, Lloyd (streamed)
    apply.py   apply_kmeans: the resumable `speechunits kmeans apply` job (units as extract writes them)
    regression.py  CentroidRegression: an affine read-out pulling frames toward the centroids (`kmeans regress`)

    from speechunits.units.kmeans import KMeansConfig, fit_kmeans, apply_kmeans
    model = fit_kmeans("feats/train", KMeansConfig(k=100)).model
    apply_kmeans(model, "feats/dev", "units/kmeans100_dev")
"""

from speechunits.units.kmeans.apply import ApplyOptions, apply_kmeans
from speechunits.units.kmeans.fit import FitResult, FrameSample, KMeansConfig, fit_frames, fit_kmeans
from speechunits.units.kmeans.model import KMeans

__all__ = ["KMeans", "KMeansConfig", "FitResult", "FrameSample", "fit_frames", "fit_kmeans", "ApplyOptions",
           "apply_kmeans"]
