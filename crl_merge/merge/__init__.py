"""Model merging over state dicts: averaging and interpolation, Git Re-Basin weight matching
with permutation specs, activation matching, Fisher merging, task arithmetic and TIES, a
logit-ensemble baseline, and diagnostics (per-layer L2 distance, interpolation paths).

>>> from crl_merge.merge import rebasin_merge, spec_for
>>> merged = rebasin_merge(spec_for(actor_a), actor_a.state_dict(), actor_b.state_dict(), alpha=0.5)
"""

from crl_merge.merge.activation_matching import activation_matching
from crl_merge.merge.diagnostics import barrier, interpolation_path, l2_distance, layer_distances
from crl_merge.merge.ensemble import LogitEnsemble
from crl_merge.merge.fisher import diagonal_fisher, dt_diagonal_fisher, dt_mse_fisher, normalise_fisher
from crl_merge.merge.operators import average, fisher_merge, interpolate, rebasin_merge, task_arithmetic, ties_merge
from crl_merge.merge.methods import DIRECTIONS, MERGE_METHODS, WEIGHTS_ONLY, MergeMethodInfo, merge_weights
from crl_merge.merge.specs import (Permutation, PermutationSpec, apply_permutation, identity_permutation,
                                   random_permutation, spec_for)
from crl_merge.merge.subsets import parameter_groups, select
from crl_merge.merge.weight_matching import Alignment, align, weight_matching

__all__ = [
    "activation_matching", "barrier", "interpolation_path", "l2_distance", "layer_distances", "LogitEnsemble",
    "diagonal_fisher", "dt_diagonal_fisher", "dt_mse_fisher", "normalise_fisher", "average", "fisher_merge", "interpolate", "rebasin_merge",
    "task_arithmetic", "ties_merge", "Permutation", "PermutationSpec", "apply_permutation",
    "identity_permutation", "random_permutation", "spec_for", "MERGE_METHODS", "MergeMethodInfo", "WEIGHTS_ONLY",
    "DIRECTIONS", "merge_weights",
    "parameter_groups", "select", "Alignment", "align", "weight_matching",
]
