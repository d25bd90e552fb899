"""Every threshold that decides a verdict, defined once and stated in words.

The notebooks quote these names and values; the report prints them; the claims use them.
Change one here and every verdict, text and report follows.
"""

from __future__ import annotations

# The paper's mean-field rate of a batch-normalized ReLU layer, sqrt(pi / (pi - 1)): a known value
# of the survey, not a threshold; re-exported here because the claims compare rates with it.
from explodegrad.studies.survey import BATCHNORM_RELU_MEAN_FIELD_RATE as BATCHNORM_RELU_MEAN_FIELD_RATE

#: Exploding gradients: GSC(k, 0) ~ c * r^k with r at least this (per addressable layer: per
#: block for a ResNet, as in the paper). Our operational choice, for two reasons: 1.02 per layer
#: compounds to a factor e (2.7) over the paper's 50 layers, about as much as the loss and the
#: readout change the GSC anyway (the constant c), so below it depth is not what makes the GSC
#: large; and finite width alone moves the fitted r of a flat He-initialized ReLU profile by about
#: 0.01 (1.005 at width 100, 1.015 at width 64), so a threshold nearer 1 would call noise an
#: explosion. Judged by :func:`explodegrad.claims.explosion.explosion_verdict`.
EXPLODING_RATE = 1.02
#: ... and the exponential must describe the profile: R^2 of the log-linear fit at least this.
#: A flat, noisy profile (R^2 near 0) is not an explosion whatever its fitted slope.
EXPLODING_R_SQUARED = 0.9
#: Margin on the rate: within EXPLODING_RATE +- RATE_MARGIN the call is inconclusive.
RATE_MARGIN = 0.005
#: Margin on R^2.
R_SQUARED_MARGIN = 0.02

#: How close a measured rate must come to the mean-field rate to "match" it.
MEAN_FIELD_TOLERANCE = 0.02

#: "Explodes far less": a ResNet's log-rate per weight layer at most this fraction of its plain
#: twin's (a block has two weight layers, so its per-layer rate is the block rate ** 0.5).
FAR_LESS_LOG_RATE_RATIO = 0.5

#: A collapsed domain at the last hidden layer: sign diversity below this (neurons always on or
#: always off) ...
COLLAPSED_SIGN_DIVERSITY = 0.1
#: ... or a layer that acts almost affinely on its data: 1 - R^2 below this.
COLLAPSED_LINEAR_FIT_ERROR = 0.01
#: A healthy sign diversity, well away from a collapsed one: at least this (0.5 is half and half).
HEALTHY_SIGN_DIVERSITY = 0.3

#: A network "trains" when its final training error is below this.
TRAINED_ERROR = 0.1
#: Two training errors differ "clearly" when they are this far apart.
ERROR_GAP = 0.1
