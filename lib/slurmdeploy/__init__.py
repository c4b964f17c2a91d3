"""slurmdeploy: the shared library of the ``slurmdeploy`` StackStorm pack.

Everything the pack's actions and sensor do lives here; they are thin adapters.

Modules, one per concept of the SKA SDP Slurm Deployer:

- :mod:`slurmdeploy.settings`    settings from the pack config with the deployer's env-var fallbacks
- :mod:`slurmdeploy.auth`        token sources for slurmrestd (static JWT, MSAL client credentials)
- :mod:`slurmdeploy.slurm`       the Slurm REST client (slurmrestd) and its per-version adapters
- :mod:`slurmdeploy.configdb`    SDP Configuration Database (etcd) access in ska-sdp-config's layout
- :mod:`slurmdeploy.layout`      the Configuration Database layout: every path, range end, the deployment marker
- :mod:`slurmdeploy.kvstore`     etcd transactions and their retry loop; the etcd and in-memory stores
- :mod:`slurmdeploy.batch`       group commit of concurrent submits' etcd reads, claims (shared lease) and state writes
- :mod:`slurmdeploy.jobs`        deployment args -> Slurm job request (name, mcs_label, environment)
- :mod:`slurmdeploy.states`      Slurm job_state -> SDP status, and the SKA deployment-state format
- :mod:`slurmdeploy.deployer`    the deployer's operations: observe (sensor), submit, cancel, update_state
"""

__version__ = "0.1.0"
