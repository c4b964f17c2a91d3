"""Why the pack's library may not import, said once for every action base.

The pack's ``lib/`` is on the import path only with ``[packs] enable_common_libs = True``
(StackStorm's st2.conf), so this hint cannot live in ``lib/`` itself. Sensors carry their
own copy for the same reason (``actions/lib`` is not importable by sensors).
"""


def library_import_error(exc):
    """An ImportError naming the StackStorm setting and the requirements to check."""
    return ImportError(
        "the slurmdeploy pack cannot import its library (lib/slurmdeploy): set "
        "`[packs] enable_common_libs = True` in /etc/st2/st2.conf, run `st2ctl restart`, "
        f"and check that the pack's requirements.txt is installed ({exc})"
    )
