"""The type check every plot file shares: a wrong result raises ``TypeError`` naming its home.

A plot function draws one kind of result; when it is handed something else, the message says
which function makes the right one (``explodegrad.studies.survey.architecture_survey``), so
the learner knows where to get it.
"""

from __future__ import annotations


def check_result(argument: str, value: object, kind: type, source: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``kind``.

    Args:
        argument: the plot function's argument name, e.g. ``"result"``.
        value: what was passed.
        kind: the result class the plot draws.
        source: the dotted path of the function that makes such a result.
    """
    if not isinstance(value, kind):
        article = "an" if kind.__name__[:1] in "AEIOU" else "a"
        raise TypeError(
            f"{argument}: expected {article} {kind.__name__} from {source}, got {type(value).__name__}"
        )
