"""The Slurm REST client (slurmrestd) and its per-version adapters.

- :class:`SlurmClient` - transport, auth retry, operations (ping, diag, submit, get, list, cancel)
- :mod:`slurmdeploy.slurm.versions` - everything that differs between REST API versions
- :mod:`slurmdeploy.slurm.models` - version-independent :class:`JobRequest` and :class:`SlurmJob`
"""

from slurmdeploy.slurm.client import SlurmClient, build_session
from slurmdeploy.slurm.models import JobRequest, SlurmJob

__all__ = ["SlurmClient", "build_session", "JobRequest", "SlurmJob"]
