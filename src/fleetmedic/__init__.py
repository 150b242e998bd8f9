"""fleetmedic: reliability for ML GPU platforms.

The package is laid out as the pipeline's stages: ``sources`` read the outside world into the records
of ``model``; ``diagnose`` names root causes; ``store`` keeps records; ``kpi`` measures; ``cli`` wires
them for people. A stage talks to another only through ``model`` records and the ``store``.
"""

__version__ = "0.1.0"
