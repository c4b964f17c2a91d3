"""slurmdeploy: the shared library of the ``slurmdeploy`` StackStorm pack.

Everything the pack's actions and sensor do lives here; they are thin adapters.

Modules, one per concept of the SKA SDP Slurm Deployer (``tests/unit/test_module_map.py``
checks that this list, the one in :mod:`slurmdeploy.slurm` and README.md's map name every
module):

- :mod:`slurmdeploy.settings`    settings from the pack config with the deployer's env-var fallbacks
- :mod:`slurmdeploy.logs`        the ``log_level`` setting applied to the library's loggers
- :mod:`slurmdeploy.errors`      the error tree (one builder from Slurm's answers) and the actions' failure result
- :mod:`slurmdeploy.auth`        token sources for slurmrestd (static JWT, MSAL client credentials)
- :mod:`slurmdeploy.slurm`       the Slurm REST API layer: endpoint table, client, per-version adapters, operations
- :mod:`slurmdeploy.configdb`    SDP Configuration Database (etcd) access in ska-sdp-config's layout
- :mod:`slurmdeploy.layout`      the Configuration Database layout: every path, range end, the deployment marker
- :mod:`slurmdeploy.kvstore`     etcd transactions and their retry loop; the etcd and in-memory stores
- :mod:`slurmdeploy.jobs`        deployment args -> Slurm job request (name, mcs_label, environment)
- :mod:`slurmdeploy.states`      Slurm job_state -> SDP status, and the SKA deployment-state format
- :mod:`slurmdeploy.decisions`   the deployer's pure decisions (observe, submit, cancel, update_state)
- :mod:`slurmdeploy.deployer`    the deployer's operations (I/O shell): observe (sensor), submit, cancel, update_state
- :mod:`slurmdeploy.jobview`     the sensor's view of its jobs: states by id, full listing on the resync timer
- :mod:`slurmdeploy.watch`       the sensor loop: Configuration DB watch, poll timer, liveness
- :mod:`slurmdeploy.node_events` the node-state sensor's comparison of node states
- :mod:`slurmdeploy.accounted`   the job_accounted trigger's decision and sensor hook; a deployment's own usage
"""

__version__ = "0.1.0"
