"""The one table of Slurm REST endpoints: operation name -> method, path template, REST versions.

Every request this library sends to slurmrestd takes its method and path from
:data:`ENDPOINTS` (through :func:`resolve`, :meth:`slurmdeploy.slurm.versions.ApiVersion.path`
or :meth:`slurmdeploy.slurm.client.SlurmClient.call`); no other module spells a ``/slurm/``
or ``/slurmdb/`` path. A path template starts with its plugin's prefix and ``{version}``
(the data_parser version, e.g. ``v0.0.42``), followed by path parameters in braces::

    "job_get":     Endpoint("GET", "/slurm/{version}/job/{job_id}", "v0.0.38"),
    "db_job_list": Endpoint("GET", "/slurmdb/{version}/jobs", "v0.0.38"),   # one line per slurmdbd call

``/slurm/`` paths are served by slurmrestd's ``openapi/slurmctld`` plugin, ``/slurmdb/`` paths
by ``openapi/slurmdbd`` (slurmrestd ``-s``), both with the same data_parser versions
(``src/slurmrestd/plugins/openapi/{slurmctld,slurmdbd}/``).

Sources: Slurm's OpenAPI documents: v0.0.38 (complete, and ``GET /openapi/v3`` of Slurm
22.05.8), v0.0.39 (Slurm's template), v0.0.40-42 (``GET /openapi/v3`` of Slurm 24.11.5),
v0.0.42-45 (``GET /openapi/v3`` of Slurm 26.05.5; recorded as
``tests/fixtures/slurm/v0.0.4x/openapi_v3_*.json`` and compared with this table by
``tests/unit/test_slurm_reservations.py`` and ``tests/integration/test_operations.py``).
Node update/delete arrived with v0.0.39 (``/node/{node_name}`` is GET-only in v0.0.38);
``jobs/state/`` with v0.0.40 (Slurm 23.11); reservation create/update/delete with v0.0.43
(Slurm 25.05, ``src/slurmrestd/plugins/openapi/slurmctld/reservations.c``). ``POST
/reservation`` creates the reservation when no reservation of that name exists (names compared
case-insensitively) and *updates* the existing one otherwise: create and update share the
endpoint, and :mod:`slurmdeploy.slurm.operations` tells them apart by reading the reservations
first. Job steps are not served by slurmctld's REST API in any version (only slurmdbd's
accounting API, ``/slurmdb/<v>/job/{id}``, has steps).
"""

from typing import NamedTuple, Optional
from urllib.parse import quote

#: REST API version -> the first Slurm release serving it, for every version this library speaks
#: (the keys of ``versions.ADAPTERS``, checked by tests/unit/test_slurm_endpoints.py; Slurm's RELEASE_NOTES and
#: ``doc/html/openapi_release_notes/slurm-<release>.html``; the testbed: 22.05.8 serves
#: v0.0.36-38, 24.11.5 v0.0.40-42, 26.05.5 v0.0.42-45).
SLURM_RELEASE = {
    "v0.0.38": "22.05", "v0.0.39": "23.02", "v0.0.40": "23.11", "v0.0.41": "24.05",
    "v0.0.42": "24.11", "v0.0.43": "25.05", "v0.0.44": "25.11", "v0.0.45": "26.05",
}


def version_key(name):
    """``"v0.0.42"`` -> ``(0, 0, 42)``, for comparing REST API versions."""
    return tuple(int(part) for part in name.lstrip("v").split("."))


class Endpoint(NamedTuple):
    """One REST operation.

    Attributes:
        method: HTTP method (``"GET"``, ``"POST"``, ``"DELETE"``).
        path: path template from the server root, ``{version}`` for the REST API version and
            ``{name}`` for each path parameter, e.g. ``"/slurm/{version}/job/{job_id}"``.
        first: the first REST API version serving it (``"v0.0.38"``).
        last: the last REST API version serving it, or None while every later one does.
    """

    method: str
    path: str
    first: str
    last: Optional[str] = None

    @property
    def plugin(self):
        """``"slurm"`` (slurmctld, ``openapi/slurmctld``) or ``"slurmdb"`` (``openapi/slurmdbd``)."""
        return self.path.split("/")[1]

    def served_by(self, version):
        """True when REST API ``version`` (``"v0.0.42"``) serves this operation."""
        key = version_key(version)
        return key >= version_key(self.first) and (self.last is None or key <= version_key(self.last))


#: operation -> Endpoint. The only place a Slurm REST path is spelled (README "Slurm REST API").
ENDPOINTS = {
    # slurmctld: cluster
    "ping": Endpoint("GET", "/slurm/{version}/ping", "v0.0.38"),
    "diag": Endpoint("GET", "/slurm/{version}/diag", "v0.0.38"),
    "licenses": Endpoint("GET", "/slurm/{version}/licenses", "v0.0.38"),
    # slurm.conf as `scontrol show config` prints it: v0.0.45 only (26.05.5's /openapi/v3)
    "slurm_conf": Endpoint("GET", "/slurm/{version}/conf", "v0.0.45"),
    # slurmctld: jobs
    "job_submit": Endpoint("POST", "/slurm/{version}/job/submit", "v0.0.38"),
    "job_list": Endpoint("GET", "/slurm/{version}/jobs", "v0.0.38"),
    # ids and states only, filtered by job_id (v0.0.40+, Slurm 23.11; 24.11.5's /openapi/v3).
    # Several ids are repeated parameters (job_id=1&job_id=2): "1,2" encoded is refused with
    # 422 "Query empty or not RFC7320 compliant" (seen on 24.11.5)
    "job_state_list": Endpoint("GET", "/slurm/{version}/jobs/state/", "v0.0.40"),
    "job_get": Endpoint("GET", "/slurm/{version}/job/{job_id}", "v0.0.38"),
    "job_update": Endpoint("POST", "/slurm/{version}/job/{job_id}", "v0.0.38"),
    "job_cancel": Endpoint("DELETE", "/slurm/{version}/job/{job_id}", "v0.0.38"),
    # slurmctld: nodes
    "node_list": Endpoint("GET", "/slurm/{version}/nodes", "v0.0.38"),
    "node_get": Endpoint("GET", "/slurm/{version}/node/{node_name}", "v0.0.38"),
    "node_update": Endpoint("POST", "/slurm/{version}/node/{node_name}", "v0.0.39"),
    # slurmctld: partitions, reservations
    "partition_list": Endpoint("GET", "/slurm/{version}/partitions", "v0.0.38"),
    "partition_get": Endpoint("GET", "/slurm/{version}/partition/{partition_name}", "v0.0.38"),
    "reservation_list": Endpoint("GET", "/slurm/{version}/reservations", "v0.0.38"),
    "reservation_get": Endpoint("GET", "/slurm/{version}/reservation/{reservation_name}", "v0.0.38"),
    "reservation_create": Endpoint("POST", "/slurm/{version}/reservation", "v0.0.43"),
    "reservation_update": Endpoint("POST", "/slurm/{version}/reservation", "v0.0.43"),
    "reservation_delete": Endpoint("DELETE", "/slurm/{version}/reservation/{reservation_name}", "v0.0.43"),
    # slurmdbd (accounting): served with slurmrestd's openapi/dbv0.0.38 (22.05) or openapi/slurmdbd
    # (23.11+) plugin; jobs and steps (slurmdeploy.slurm.accounting, 22.05.8 / 24.11.5 / 26.05.5)
    "db_job_list": Endpoint("GET", "/slurmdb/{version}/jobs/", "v0.0.38"),
    "db_job_get": Endpoint("GET", "/slurmdb/{version}/job/{job_id}", "v0.0.38"),
    "db_account_get": Endpoint("GET", "/slurmdb/{version}/account/{account_name}", "v0.0.38"),
    "db_user_get": Endpoint("GET", "/slurmdb/{version}/user/{user_name}", "v0.0.38"),
    "db_cluster_get": Endpoint("GET", "/slurmdb/{version}/cluster/{cluster_name}", "v0.0.38"),
    # accounts, users, associations and limits (slurmdeploy.slurm.accounts, 24.11.5 / 26.05.5): from
    # v0.0.40 (23.11), which adds accounts_association/users_association (an account made with its
    # association in one slurmdbd call); 22.05's v0.0.38 has neither
    "db_cluster_list": Endpoint("GET", "/slurmdb/{version}/clusters/", "v0.0.40"),
    "db_tres_list": Endpoint("GET", "/slurmdb/{version}/tres/", "v0.0.40"),
    "db_qos_list": Endpoint("GET", "/slurmdb/{version}/qos/", "v0.0.40"),
    "db_accounts_association_add": Endpoint("POST", "/slurmdb/{version}/accounts_association/", "v0.0.40"),
    "db_accounts_update": Endpoint("POST", "/slurmdb/{version}/accounts/", "v0.0.40"),
    "db_account_delete": Endpoint("DELETE", "/slurmdb/{version}/account/{account_name}", "v0.0.40"),
    "db_users_association_add": Endpoint("POST", "/slurmdb/{version}/users_association/", "v0.0.40"),
    "db_association_list": Endpoint("GET", "/slurmdb/{version}/associations/", "v0.0.40"),
    "db_associations_update": Endpoint("POST", "/slurmdb/{version}/associations/", "v0.0.40"),
    "db_association_delete": Endpoint("DELETE", "/slurmdb/{version}/association/", "v0.0.40"),
}

#: (operation, older version) -> the Slurm release from which slurmrestd serves the operation
#: under that older version too. Slurm 26.05.5 binds ``DELETE /reservation/{name}`` for every
#: data_parser it loads, v0.0.42 included (its ``GET /openapi/v3`` lists it and a DELETE there
#: removes the reservation, seen); 24.11.5 serves only GET there. This library still asks for
#: v0.0.43 for every reservation write (create needs v0.0.43's ``reservation_desc_msg``).
ALSO_SERVED_FROM = {("reservation_delete", "v0.0.42"): "26.05"}


def resolve(operation, version, **params):
    """The method and concrete path of ``operation`` under REST API ``version``.

    Args:
        operation: a key of :data:`ENDPOINTS`.
        version: a REST API version name such as ``"v0.0.42"``.
        params: the path parameters (``job_id=7``); each is URL-quoted (``/`` too). A
            parameter not given stays as ``{name}`` (for messages naming the template).

    Returns:
        ``(method, path)``, e.g. ``("GET", "/slurm/v0.0.42/job/7")``.

    Raises:
        KeyError: unknown operation (a programming error).
        UnsupportedOperation: ``version`` does not serve it, naming the Slurm release that does.
    """
    endpoint = ENDPOINTS[operation]
    if not endpoint.served_by(version):
        from slurmdeploy.errors import UnsupportedOperation

        raise UnsupportedOperation(operation, f"{endpoint.method} {template(operation)}", version,
                                   SLURM_RELEASE.get(endpoint.first, "?"), endpoint.first,
                                   spoken=endpoint.first in SLURM_RELEASE)
    values = {name: quote(str(value), safe="") for name, value in params.items()}
    return endpoint.method, _fill(endpoint.path, version, values)


def template(operation):
    """The path template of ``operation`` below its version prefix, e.g. ``/job/{job_id}``."""
    return "/" + ENDPOINTS[operation].path.split("/", 3)[3]


def path_pattern(operation, version):
    """The path of ``operation`` with ``version`` filled in and the path parameters kept, e.g.
    ``/slurm/v0.0.38/node/{node_name}``, whether or not that version serves it (for comparing
    the table with a server's ``GET /openapi/v3``)."""
    return _fill(ENDPOINTS[operation].path, version, {})


def _fill(path, version, values):
    class _Keep(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    return path.format_map(_Keep(values, version=version))
