"""The library's log level (``log_level`` / ``SDP_LOG_LEVEL``) and where its lines go.

Every module logs to a child of the ``slurmdeploy`` logger. Under StackStorm's sensor container
and under packrunner the root logger has handlers, so only the level is set. StackStorm's
python-runner wrapper configures no root handler: it gives each action a logger of its own that
writes to stderr (``st2common/runners/base_action.py``, ``get_logger_for_python_runner_action``),
so without a handler of ours the library's INFO lines would be lost (Python's last-resort handler
prints WARNING and above only). There :func:`apply_log_level` adds one stderr handler, which
StackStorm records as the execution's stderr.
"""

import logging
import sys

LOGGER_NAME = "slurmdeploy"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def apply_log_level(level):
    """Set the level of the ``slurmdeploy`` logger and make sure its records are written.

    Args:
        level: a level name (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``), as
            :class:`slurmdeploy.settings.Settings` validates it.

    Returns:
        the ``slurmdeploy`` :class:`logging.Logger`.

    Idempotent: the stderr handler is added at most once, and only when no handler on the logger
    or its ancestors would write its records.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    return logger
