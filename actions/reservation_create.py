from lib.ops import OperationsAction


class ReservationCreate(OperationsAction):
    """Create a Slurm reservation through slurmrestd, REST v0.0.43+ (slurmdeploy.slurm.operations)."""

    def run(self, name, nodes=None, node_count=None, start_time=None, end_time=None, duration=None,
            users=None, accounts=None, flags=None, fields=None):
        return self.call("create_reservation", name, nodes=nodes, node_count=node_count, start_time=start_time,
                         end_time=end_time, duration=duration, users=users, accounts=accounts, flags=flags,
                         fields=fields or None)
