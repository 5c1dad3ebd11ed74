"""Python client of the mlbench service (``mlbench serve``).

Only the standard library and NumPy: HTTP through ``urllib``, server-sent events
read line by line from the response. See ``Client``.
"""

from .client import (APIError, Client, Comparison, Event, Experiment, Probe, Result,
                     ResultHeadline, Upload)

__all__ = ["APIError", "Client", "Comparison", "Event", "Experiment", "Probe", "Result",
           "ResultHeadline", "Upload"]
