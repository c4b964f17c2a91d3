"""Slurm accounts, users and limits in slurmdbd, through slurmrestd (``/slurmdb/<version>/...``):
what ``sacctmgr add/modify/delete account|user`` does, idempotently (issue 17, the Waldur
agent's "pull" side).

:class:`AccountAdmin` creates, modifies and deletes accounts (parent, description,
organization), adds and removes users (user associations), and sets and clears association
limits (``GrpTRESMins``, ``GrpTRES``, ``MaxJobs``, ``MaxWall``, ``QOS``). Every write is read
back and compared with what was asked; creating what exists answers ``exists``, deleting what is
gone ``absent``. Nothing is half-done: an account is created together with its association in
one slurmdbd call (``POST accounts_association``), and every check that can refuse a request is
made before the first write.

Where the facts come from (Slurm 24.11.5 and 26.05.5 of the testbed; ``GET /openapi/v3``;
``src/plugins/data_parser/v0.0.42/parsers.c`` ``PARSER_ARRAY(ASSOC)``; details and how to
reproduce each in ``docs/slurm-rest-accounting.md``):

- The endpoints (``db_*`` rows of :data:`slurmdeploy.slurm.endpoints.ENDPOINTS`) need REST
  v0.0.40 (Slurm 23.11) or newer: ``accounts_association`` and ``users_association`` do not
  exist in 22.05's v0.0.38, whose two-step account creation could leave an account without
  its association. On 22.05 every method raises
  :class:`~slurmdeploy.errors.UnsupportedOperation` before sending anything.
- The pack's Slurm user needs ``AdminLevel=Operator`` (or ``Administrator``) in slurmdbd:
  without it slurmdbd refuses with error 2002 "Access/permission denied"
  (:class:`AdminLevelRequired`). Operator is enough for every method here.
- An association's limits live under ``max`` with names unlike sacctmgr's: ``GrpTRES`` is
  ``max.tres.total``, ``GrpTRESMins`` ``max.tres.group.minutes``, ``MaxJobs``
  ``max.jobs.active``, ``MaxWall`` ``max.jobs.per.wall_clock``, ``GrpJobs``
  ``max.jobs.per.count``, ``GrpWall`` ``max.per.account.wall_clock`` (:data:`LIMITS`).
- A limit is cleared with ``{"set": true, "infinite": true}`` (a count) or a TRES count of -1;
  ``{"set": false}`` is silently ignored (the old value stays).
- A TRES that slurmdbd does not track (e.g. ``gres/gpu`` without it in
  ``AccountingStorageTRES``) is silently dropped with HTTP 200: this module refuses it before
  writing (it reads ``GET tres``) and checks the read-back.
- Deleting an account that has child accounts removes the children's associations too (the
  child accounts stay, without association): this module refuses it, naming the children.
- Deleting an account or association with running or pending jobs: slurmdbd refuses with error
  7001 "Job(s) active, cancel job(s) before remove" (:class:`AccountBusy`), nothing removed.
- slurmdbd down (slurmctld up): HTTP 502 with error 7000 (24.11, 26.05):
  :class:`~slurmdeploy.slurm.accounting.AccountingUnavailable`.
- Creating an account that exists is answered HTTP 304 with an empty body; deleting an account
  or association that does not exist too. This module reads first and answers ``exists`` /
  ``absent`` without writing.
- slurmdbd adds a user association for any user name, even one with no Unix account on the
  cluster (nothing in slurmdbd knows the cluster's users).

Nothing here logs or returns a token.
"""

import logging
import re

from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError, error_from_answer, slurm_error_numbers
from slurmdeploy.slurm.accounting import AccountingUnavailable
from slurmdeploy.slurm.versions import no_val_number

LOG = logging.getLogger(__name__)

#: this module's operations: keys of the one endpoint table (``/slurmdb/<version>/...``)
OPERATIONS = ("db_account_get", "db_account_delete", "db_accounts_association_add", "db_users_association_add",
              "db_association_list", "db_associations_update", "db_association_delete", "db_cluster_list",
              "db_qos_list", "db_tres_list")

#: Slurm errors of slurmdbd writes (slurm_errno.h, Slurm 24.11.5): ESLURM_ACCESS_DENIED,
#: ESLURM_DB_CONNECTION, ESLURM_JOBS_RUNNING_ON_ASSOC, ESLURM_DB_CONNECTION_INVALID,
#: ESLURM_INVALID_PARENT_ACCOUNT, ESLURM_INVALID_QOS
ACCESS_DENIED, DB_CONNECTION, JOBS_RUNNING, DB_CONNECTION_INVALID = 2002, 7000, 7001, 7008
INVALID_PARENT, INVALID_QOS = 2046, 2066

#: sacctmgr's limit name -> (kind, path in an association record of v0.0.40+). Kinds: ``tres``
#: (a TRES list, sacctmgr's ``cpu=4,mem=1000``), ``count`` (a number), ``minutes`` (a number of
#: minutes), ``qos`` (a list of QOS names). From parsers.c ``PARSER_ARRAY(ASSOC)``.
LIMITS = {
    "GrpTRESMins": ("tres", ("max", "tres", "group", "minutes")),
    "GrpTRES": ("tres", ("max", "tres", "total")),
    "GrpJobs": ("count", ("max", "jobs", "per", "count")),
    "GrpWall": ("minutes", ("max", "per", "account", "wall_clock")),
    "MaxJobs": ("count", ("max", "jobs", "active")),
    "MaxSubmitJobs": ("count", ("max", "jobs", "total")),
    "MaxWall": ("minutes", ("max", "jobs", "per", "wall_clock")),
    "MaxTRES": ("tres", ("max", "tres", "per", "job")),
    "QOS": ("qos", ("qos",)),
}

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


class AdminLevelRequired(SlurmAPIError):
    """slurmdbd refused the write (error 2002): the pack's Slurm user lacks ``AdminLevel``."""


class AccountBusy(SlurmAPIError):
    """slurmdbd refused to remove an account or association with active jobs (error 7001)."""


class LimitRejected(SlurmAPIError):
    """Slurm did not apply a limit as asked (refused it, or ignored it: read back differently)."""


def check_name(value, what):
    """A Slurm account, user, cluster or QOS name, stripped; BadRequest when empty or odd.

    sacctmgr lower-cases account names and refuses commas and spaces; this accepts letters,
    digits, ``_ . @ -`` (up to 64 characters), as Unix user names and Slurm account names use.
    """
    text = "" if value is None else str(value).strip()
    if not _NAME.match(text):
        raise BadRequest(f"{what}: {value!r} is not a valid name (letters, digits, _ . @ -; up to 64 characters)")
    return text


def parse_tres(value, what):
    """A TRES limit as sacctmgr writes it: ``"cpu=4,mem=1000,gres/gpu=2"`` or a dict ``{"cpu": 4}``.

    Returns:
        ``{"cpu": 4, "mem": 1000}`` (ints; -1 means "clear that TRES").

    Raises:
        BadRequest: not ``name=integer`` pairs.
    """
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, str):
        items = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, sep, count = part.partition("=")
            if not sep:
                raise BadRequest(f"{what}: {part!r} is not name=count (e.g. cpu=1000,mem=4000)")
            items.append((name.strip(), count.strip()))
    else:
        raise BadRequest(f"{what}: expected 'cpu=4,mem=1000' or a dict, got {type(value).__name__}")
    out = {}
    for name, count in items:
        try:
            number = int(count)
        except (TypeError, ValueError):
            raise BadRequest(f"{what}: the count of {name!r} must be an integer (or -1 to clear), got {count!r}") \
                from None
        if number < -1:
            raise BadRequest(f"{what}: the count of {name!r} must be >= 0 (or -1 to clear), got {number}")
        out[str(name).lower()] = number
    if not out:
        raise BadRequest(f"{what}: no TRES given (e.g. cpu=1000)")
    return out


def _tres_list(tres):
    """``{"cpu": 4, "gres/gpu": 2}`` -> ``[{"type": "cpu", "count": 4}, {"type": "gres", "name": "gpu", "count": 2}]``."""
    out = []
    for key, count in tres.items():
        kind, _, name = key.partition("/")
        entry = {"type": kind, "count": count}
        if name:
            entry["name"] = name
        out.append(entry)
    return out


def _tres_read(items):
    """A TRES list of a read association -> ``{"cpu": 4}`` (entries without a count left out)."""
    out = {}
    for item in items or []:
        if isinstance(item, dict) and item.get("type") and item.get("count") is not None:
            out[item["type"] + (f"/{item['name']}" if item.get("name") else "")] = int(item["count"])
    return out


def _dig(record, path):
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _put(record, path, value):
    for key in path[:-1]:
        record = record.setdefault(key, {})
    record[path[-1]] = value


def limits_of(assoc):
    """The limits of an association record (v0.0.40+) in sacctmgr's names and units.

    Returns:
        ``{"GrpTRESMins": {"cpu": 1000}, "GrpTRES": {}, "MaxJobs": 5 or None, "MaxWall": 90 or None
        (minutes), "QOS": ["normal"], ...}``: every name of :data:`LIMITS`; None / ``{}`` = no limit.
    """
    out = {}
    for name, (kind, path) in LIMITS.items():
        value = _dig(assoc, path)
        if kind == "tres":
            out[name] = _tres_read(value)
        elif kind == "qos":
            out[name] = sorted(str(q) for q in value or [])
        else:
            out[name] = no_val_number(value)
    return out


def limits_body(limits, known_tres=None):
    """The ``max``/``qos`` part of an association update for ``limits``.

    Args:
        limits: ``{sacctmgr name: value}``; value None clears the limit. TRES limits take
            ``"cpu=4,mem=1000"`` or a dict (a count of -1 clears that TRES), ``MaxJobs`` an int,
            ``MaxWall``/``GrpWall`` minutes (int), ``QOS`` a list or ``"normal,high"``.
        known_tres: TRES names slurmdbd tracks (``{"cpu", "mem", "gres/gpu", ...}``), or None
            to skip that check.

    Returns:
        ``(body fields, wanted)``: the fields to merge into the association record, and what
        :func:`limits_of` should read back afterwards (for the changed names).

    Raises:
        BadRequest: an unknown limit name, a bad value, or a TRES slurmdbd does not track.
    """
    if not isinstance(limits, dict) or not limits:
        raise BadRequest(f"limits: expected a non-empty mapping of limit names to values (names: {', '.join(LIMITS)})")
    body, wanted = {}, {}
    for name, value in limits.items():
        if name not in LIMITS:
            raise BadRequest(f"unknown limit {name!r}; use one of {', '.join(LIMITS)} (sacctmgr's names)")
        kind, path = LIMITS[name]
        if kind == "tres":
            if value is None:
                raise BadRequest(f"{name}: to clear TRES limits give each TRES with -1 (e.g. cpu=-1)")
            tres = parse_tres(value, name)
            unknown = sorted(set(tres) - set(known_tres)) if known_tres is not None else []
            if unknown:
                raise LimitRejected(f"{name}: slurmdbd does not track TRES {', '.join(unknown)} (it tracks "
                                    f"{', '.join(sorted(known_tres))}); add them to AccountingStorageTRES or "
                                    "leave them out (Slurm would ignore them silently)", request_sent=False)
            _put(body, path, _tres_list(tres))
            wanted[name] = {k: v for k, v in tres.items() if v != -1}
        elif kind == "qos":
            names = [] if value is None else value.split(",") if isinstance(value, str) else list(value)
            names = sorted(check_name(q, "QOS") for q in names if str(q).strip())
            if not names:
                raise BadRequest("QOS: an association needs at least one QOS (Slurm's default is 'normal')")
            _put(body, path, names)
            wanted[name] = names
        else:
            if value is None:
                _put(body, path, {"set": True, "infinite": True, "number": 0})
                wanted[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int) and not str(value).strip().isdigit():
                raise BadRequest(f"{name}: expected a whole number{' of minutes' if kind == 'minutes' else ''} "
                                 f"or null to clear, got {value!r}")
            number = int(value)
            _put(body, path, {"set": True, "infinite": False, "number": number})
            wanted[name] = number
    return body, wanted


class AccountAdmin:
    """Accounts, user associations and limits in slurmdbd (sacctmgr's add/modify/delete).

    Args:
        client: a :class:`slurmdeploy.slurm.client.SlurmClient` (its token's user needs
            ``AdminLevel=Operator`` in slurmdbd for the writes).

    Every method returns a dict with ``result`` (``created``/``exists``, ``deleted``/``absent``,
    ``added``/``exists``, ``removed``/``absent``, ``set``) and the record as read back, and raises
    :class:`~slurmdeploy.errors.BadRequest` (bad input), :class:`~slurmdeploy.errors.NotFound`
    (unknown account, user association, cluster, QOS), :class:`AdminLevelRequired`,
    :class:`AccountBusy`, :class:`LimitRejected`,
    :class:`~slurmdeploy.slurm.accounting.AccountingUnavailable` (slurmdbd down),
    :class:`~slurmdeploy.errors.UnsupportedOperation` (REST older than v0.0.40, i.e. Slurm 22.05).
    """

    def __init__(self, client):
        self.client = client

    @classmethod
    def from_settings(cls, settings):
        """Build from :class:`slurmdeploy.settings.Settings` (``slurm_url`` and credentials)."""
        from slurmdeploy.slurm.client import SlurmClient

        return cls(SlurmClient.from_settings(settings))

    # ---------------------------------------------------------------- plumbing
    def call(self, operation, body=None, params=None, **names):
        """One slurmdbd request; returns the decoded answer, ``{}`` for HTTP 304 ("nothing changed").

        Raises:
            AdminLevelRequired: error 2002.
            AccountBusy: error 7001.
            AccountingUnavailable: error 7000/7008 (slurmdbd down), or 404 without Slurm error
                (slurmrestd without the slurmdbd plugin).
            NotFound: error 9003 (nothing found), 2017/2000.
            SlurmAPIError: anything else (:func:`slurmdeploy.errors.error_from_answer`).
        """
        method, path = self.client.endpoint(operation, **names)
        try:
            status, data = self.client.request(method, path, body=body, params=params,
                                               allow_statuses=[304] + [s for s in range(400, 600) if s != 404])
        except SlurmAPIError as exc:
            if exc.status != 404 or exc.error_numbers:
                raise
            status, data = 404, {}
        data = data if isinstance(data, dict) else {}
        errors = data.get("errors") or []
        if (200 <= status < 300 or status == 304) and not errors:
            return data
        numbers = set(slurm_error_numbers(errors))
        where = dict(status=status, method=method, endpoint=path, api_version=self.client.api.name, errors=errors)
        user = getattr(self.client, "user_name", None)
        if status == 404 and not numbers:
            raise AccountingUnavailable("slurmrestd does not serve Slurm's accounting API (/slurmdb/...): start it "
                                        "with -s openapi/slurmctld,openapi/slurmdbd and "
                                        "AccountingStorageType=accounting_storage/slurmdbd", **where)
        if numbers & {DB_CONNECTION, DB_CONNECTION_INVALID}:
            raise AccountingUnavailable("slurmdbd did not answer slurmrestd (slurmctld may be fine): nothing was "
                                        "changed; check slurmdbd (`sacctmgr ping`, its log) and retry", **where)
        if ACCESS_DENIED in numbers:
            raise AdminLevelRequired(f"slurmdbd refused the change: the pack's Slurm user {user or '(unknown)'} needs "
                                     f"AdminLevel=Operator (sacctmgr modify user {user or '<user>'} set "
                                     "adminlevel=Operator)", **where)
        if JOBS_RUNNING in numbers:
            raise AccountBusy("slurmdbd refused: job(s) are active under it; cancel them or wait until they end, "
                              "then retry (nothing was removed)", **where)
        if numbers & {9003}:
            raise NotFound("slurmdbd found nothing for this query", **where)
        if INVALID_QOS in numbers:
            raise NotFound("unknown QOS (sacctmgr show qos lists them)", **where)
        if INVALID_PARENT in numbers:
            raise NotFound("unknown parent account on this cluster (sacctmgr show account lists them)", **where)
        raise error_from_answer(status, errors, method=method, endpoint=path, api_version=self.client.api.name,
                                message="slurmdbd refused the request")

    def _cluster(self, cluster):
        """The cluster to act on: ``cluster`` when slurmdbd knows it, else the only one it knows."""
        clusters = [c.get("name") for c in self.call("db_cluster_list").get("clusters") or [] if isinstance(c, dict)]
        if cluster:
            name = check_name(cluster, "cluster")
            if name not in clusters:
                raise NotFound(f"unknown cluster {name!r}: slurmdbd knows {', '.join(clusters) or 'none'}",
                               request_sent=True)
            return name
        if len(clusters) != 1:
            raise BadRequest(f"cluster: slurmdbd knows {len(clusters)} clusters ({', '.join(clusters)}); say which")
        return clusters[0]

    def associations(self, account=None, user=None, cluster=None):
        """Association records (v0.0.40+ shape) filtered here by account, user ("" = the account's
        own association) and cluster; ``[]`` when none."""
        params = {k: v for k, v in (("account", account), ("user", user), ("cluster", cluster)) if v}
        try:
            records = self.call("db_association_list", params=params or None).get("associations") or []
        except NotFound:
            return []
        out = []
        for rec in records:
            if not isinstance(rec, dict):
                continue
            if account is not None and rec.get("account") != account:
                continue
            if cluster is not None and rec.get("cluster") != cluster:
                continue
            if user is not None and (rec.get("user") or "") != user:
                continue
            out.append(rec)
        return out

    def account(self, name):
        """The account record (``name``, ``description``, ``organization``, ...) or None."""
        try:
            found = self.call("db_account_get", account_name=name).get("accounts") or []
        except NotFound:
            return None
        return next((a for a in found if isinstance(a, dict) and a.get("name") == name), None)

    def _view(self, account, cluster, user=""):
        acct = self.account(account) or {}
        assoc = (self.associations(account=account, user=user, cluster=cluster) or [None])[0]
        view = {"account": account, "cluster": cluster, "description": acct.get("description"),
                "organization": acct.get("organization")}
        if user:
            view["user"] = user
        if assoc is not None:
            view["parent"] = assoc.get("parent_account") or None
            view["limits"] = limits_of(assoc)
        return view, assoc

    # ---------------------------------------------------------------- accounts
    def create_account(self, account, parent="root", description=None, organization=None, cluster=None):
        """``sacctmgr add account ACCOUNT parent=PARENT description=... organization=... cluster=C``.

        Returns:
            ``{"result": "created"|"exists", "account", "cluster", "parent", "description",
            "organization", "limits"}`` as read back.

        Raises:
            NotFound: unknown cluster or parent account (nothing created).
            BadRequest: the account exists on the cluster under another parent (nothing changed).
        """
        account = check_name(account, "account")
        parent = check_name(parent or "root", "parent")
        cluster = self._cluster(cluster)
        view, assoc = self._view(account, cluster)
        if assoc is not None:
            if (assoc.get("parent_account") or "root") != parent and account != "root":
                raise BadRequest(f"account {account!r} exists on cluster {cluster!r} under parent "
                                 f"{assoc.get('parent_account')!r}, not {parent!r}; move it with account_modify")
            return dict(view, result="exists")
        if not self.associations(account=parent, user="", cluster=cluster):
            raise NotFound(f"unknown parent account {parent!r} on cluster {cluster!r} (nothing created)",
                           request_sent=True)
        body = {"association_condition": {"accounts": [account], "clusters": [cluster],
                                          "association": {"parent": parent}},
                "account": {"description": description or account, "organization": organization or parent}}
        LOG.info("creating Slurm account %s (parent %s) on cluster %s", account, parent, cluster)
        self.call("db_accounts_association_add", body=body)
        view, assoc = self._view(account, cluster)
        if assoc is None:
            raise SlurmAPIError(f"slurmdbd accepted account {account!r} but has no association of it on cluster "
                                f"{cluster!r}; check with sacctmgr show assoc account={account}")
        return dict(view, result="created")

    def modify_account(self, account, description=None, organization=None, parent=None, cluster=None):
        """``sacctmgr modify account ACCOUNT set description=... organization=... parent=...``.

        Returns:
            ``{"result": "modified"|"unchanged", ...}`` as read back.

        Raises:
            NotFound: unknown account, cluster or parent.
        """
        account = check_name(account, "account")
        cluster = self._cluster(cluster)
        view, assoc = self._view(account, cluster)
        if assoc is None:
            raise NotFound(f"unknown account {account!r} on cluster {cluster!r} (account_create makes it)",
                           request_sent=True)
        changed = False
        fields = {k: v for k, v in (("description", description), ("organization", organization)) if v is not None}
        if fields and any(view.get(k) != v for k, v in fields.items()):
            acct = dict(self.account(account) or {"name": account})
            record = {"name": account, "description": fields.get("description", acct.get("description")),
                      "organization": fields.get("organization", acct.get("organization"))}
            self.call("db_accounts_update", body={"accounts": [record]})
            changed = True
        if parent is not None and parent != view.get("parent"):
            parent = check_name(parent, "parent")
            if not self.associations(account=parent, user="", cluster=cluster):
                raise NotFound(f"unknown parent account {parent!r} on cluster {cluster!r}", request_sent=True)
            self.call("db_associations_update", body={"associations": [
                {"account": account, "cluster": cluster, "user": "", "parent_account": parent}]})
            changed = True
        view, _ = self._view(account, cluster)
        return dict(view, result="modified" if changed else "unchanged")

    def delete_account(self, account, cluster=None):
        """``sacctmgr delete account ACCOUNT`` (on every cluster: slurmdbd removes the account).

        Returns:
            ``{"result": "deleted"|"absent", "account"}``.

        Raises:
            BadRequest: the account has child accounts (Slurm would drop their associations).
            AccountBusy: jobs are active under it (nothing removed).
        """
        account = check_name(account, "account")
        if account == "root":
            raise BadRequest("the root account cannot be deleted")
        if cluster:
            self._cluster(cluster)
        if self.account(account) is None:
            return {"result": "absent", "account": account}
        children = sorted({a.get("account") for a in self.associations()
                           if (a.get("parent_account") or "") == account and not a.get("user")})
        if children:
            raise BadRequest(f"account {account!r} has child accounts {', '.join(children)}: delete or move them "
                             "first (slurmdbd would drop their associations and leave them orphaned)")
        LOG.info("deleting Slurm account %s", account)
        self.call("db_account_delete", account_name=account)
        if self.account(account) is not None:
            raise SlurmAPIError(f"slurmdbd answered the deletion of account {account!r} but still has it")
        return {"result": "deleted", "account": account}

    # ---------------------------------------------------------------- users
    def add_user(self, user, account, cluster=None, default_account=False):
        """``sacctmgr add user USER account=ACCOUNT cluster=C [defaultaccount=ACCOUNT]``.

        Returns:
            ``{"result": "added"|"exists", "user", "account", "cluster", "limits"}``.

        Raises:
            NotFound: unknown account or cluster (nothing added).
        """
        user = check_name(user, "user")
        account = check_name(account, "account")
        cluster = self._cluster(cluster)
        if not self.associations(account=account, user="", cluster=cluster):
            raise NotFound(f"unknown account {account!r} on cluster {cluster!r} (account_create makes it)",
                           request_sent=True)
        view, assoc = self._view(account, cluster, user)
        if assoc is not None:
            return dict(view, result="exists")
        body = {"association_condition": {"users": [user], "accounts": [account], "clusters": [cluster]},
                "user": {"defaultaccount": account} if default_account else {}}
        LOG.info("adding Slurm user %s to account %s on cluster %s", user, account, cluster)
        self.call("db_users_association_add", body=body)
        view, assoc = self._view(account, cluster, user)
        if assoc is None:
            raise SlurmAPIError(f"slurmdbd accepted user {user!r} in account {account!r} but has no such association")
        return dict(view, result="added")

    def remove_user(self, user, account, cluster=None):
        """``sacctmgr delete user USER account=ACCOUNT cluster=C`` (that association only).

        Returns:
            ``{"result": "removed"|"absent", "user", "account", "cluster"}``.

        Raises:
            AccountBusy: the user has active jobs in the account (nothing removed).
        """
        user = check_name(user, "user")
        account = check_name(account, "account")
        cluster = self._cluster(cluster)
        out = {"user": user, "account": account, "cluster": cluster}
        if not self.associations(account=account, user=user, cluster=cluster):
            return dict(out, result="absent")
        LOG.info("removing Slurm user %s from account %s on cluster %s", user, account, cluster)
        self.call("db_association_delete", params={"account": account, "user": user, "cluster": cluster})
        if self.associations(account=account, user=user, cluster=cluster):
            raise SlurmAPIError(f"slurmdbd answered the removal of user {user!r} from {account!r} but still has it")
        return dict(out, result="removed")

    # ---------------------------------------------------------------- limits
    def set_limits(self, account, limits, user=None, cluster=None):
        """``sacctmgr modify account|user ... set GrpTRESMins=... GrpTRES=... MaxJobs=... MaxWall=...
        QOS=...``; a value of None (TRES: a count of -1) clears it.

        Args:
            account: the account; with ``user``, the user's association in it.
            limits: see :func:`limits_body`.

        Returns:
            ``{"result": "set", "account", "cluster", ["user"], "limits": all limits read back}``.

        Raises:
            NotFound: unknown account, user association, cluster or QOS (nothing set).
            LimitRejected: Slurm refused a limit, or read back differently (named).
        """
        account = check_name(account, "account")
        user = check_name(user, "user") if user else ""
        cluster = self._cluster(cluster)
        view, assoc = self._view(account, cluster, user)
        if assoc is None:
            what = f"user {user!r} in account {account!r}" if user else f"account {account!r}"
            raise NotFound(f"unknown {what} on cluster {cluster!r}", request_sent=True)
        known = None
        if any(LIMITS.get(name, ("",))[0] == "tres" for name in limits or {}):
            answer = self.call("db_tres_list")   # the list is "TRES" (v0.0.40-45)
            known = {(t.get("type") or "") + (f"/{t['name']}" if t.get("name") else "")
                     for t in answer.get("TRES") or answer.get("tres") or [] if isinstance(t, dict)}
        body, wanted = limits_body(limits, known)
        if "QOS" in wanted:
            qos = {q.get("name") for q in self.call("db_qos_list").get("qos") or [] if isinstance(q, dict)}
            unknown = sorted(set(wanted["QOS"]) - qos)
            if unknown:
                raise NotFound(f"unknown QOS {', '.join(unknown)} (slurmdbd has {', '.join(sorted(qos))})",
                               request_sent=True)
        record = dict(body, account=account, cluster=cluster, user=user)
        LOG.info("setting limits %s of %s on cluster %s", ", ".join(sorted(wanted)),
                 f"user {user} in account {account}" if user else f"account {account}", cluster)
        try:
            self.call("db_associations_update", body={"associations": [record]})
        except BadRequest as exc:
            raise LimitRejected(f"Slurm refused the limits {', '.join(sorted(wanted))}: {exc}", status=exc.status,
                                errors=exc.errors) from None
        view, assoc = self._view(account, cluster, user)
        got = view.get("limits") or {}
        wrong = {}
        for name, want in wanted.items():
            have = got.get(name)
            if LIMITS[name][0] == "tres":
                asked = parse_tres(limits[name], name)   # cleared ones (-1) must be gone
                have = {k: v for k, v in (have or {}).items() if k in asked}
            if have != want:
                wrong[name] = (want, have)
        if wrong:
            text = "; ".join(f"{n}: asked {w!r}, Slurm has {g!r}" for n, (w, g) in sorted(wrong.items()))
            raise LimitRejected(f"Slurm did not apply the limits as asked ({text})")
        return dict(view, result="set")
