"""The tournament's scoring math: plain numpy/scipy/scikit-learn, no Dagster.

Everything here takes arrays aligned to the round's tournament-id order and returns result
objects; reading files and talking to databases happens elsewhere. Nothing here imports a
module of ``numerai_assets`` outside this package (a test checks it), and nothing is imported
by the package itself: import each module where it is used (``scoring.policy`` loads numpy
alone; ``scoring.concordance`` loads scikit-learn, ``scoring.submission`` pyarrow and pandas).

- :mod:`.comparison`: the order of a round's submissions and the comparison rule.
- :mod:`.policy`: every threshold and rule, versioned.
- :mod:`.ks`, :mod:`.correlation`, :mod:`.exact`: exact pair statistics and tie decisions.
- :mod:`.ks_sketch`: KS counts exact only where a decision needs them.
- :mod:`.originality`, :mod:`.round_decisions`: one submission's decision; a round's in order.
- :mod:`.concordance`, :mod:`.consistency`: the two other scores.
- :mod:`.submission_format`, :mod:`.submission`: reading a participant's file; :mod:`.compression`:
  undoing its gzip, bzip2 or zip; :mod:`.reasons`: how a refusal's reason reads.
- :mod:`.ks_null`, :mod:`.false_alarm`, :mod:`.alternatives`: what the thresholds mean.
"""
