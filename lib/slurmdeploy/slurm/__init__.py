"""The Slurm REST API layer (slurmrestd): one endpoint table, one transport, one error tree.

- :mod:`slurmdeploy.slurm.endpoints`    the one table of REST endpoints (operation -> method, path, versions)
- :mod:`slurmdeploy.slurm.client`       :class:`SlurmClient`: transport, auth retry, version detection; the
  deployer's job calls (submit, get, states, list, find, cancel), each the only one of its kind
- :mod:`slurmdeploy.slurm.versions`     everything that differs between REST API versions (bodies, shapes)
- :mod:`slurmdeploy.slurm.models`       version-independent :class:`JobRequest` and :class:`SlurmJob`
- :mod:`slurmdeploy.slurm.operations`   ``SlurmOperations``, a facade over :class:`SlurmClient` for the
  operators' actions (jobs by any user, nodes, partitions, reservations, cluster)
- :mod:`slurmdeploy.slurm.reservations` reservation fields as operators write them, checked before sending
- :mod:`slurmdeploy.slurm.accounting`   Slurm accounting (slurmdbd's ``/slurmdb/`` API): job history, steps, usage
- :mod:`slurmdeploy.slurm.accounts`     accounts, users and limits in slurmdbd (sacctmgr add/modify/delete)
"""

from slurmdeploy.slurm.client import SlurmClient, build_session
from slurmdeploy.slurm.models import JobRequest, SlurmJob

__all__ = ["SlurmClient", "build_session", "JobRequest", "SlurmJob"]
