from lib.ops import OperationsAction


class ReservationUpdate(OperationsAction):
    """Change an existing Slurm reservation through slurmrestd, REST v0.0.43+ (slurmdeploy.slurm.operations)."""

    def run(self, reservation, nodes=None, node_count=None, start_time=None, end_time=None, duration=None,
            users=None, accounts=None, flags=None, fields=None):
        return self.call("update_reservation", reservation, nodes=nodes, node_count=node_count, start_time=start_time,
                         end_time=end_time, duration=duration, users=users, accounts=accounts, flags=flags,
                         fields=fields or None)
