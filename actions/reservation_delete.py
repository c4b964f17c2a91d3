from lib.ops import OperationsAction


class ReservationDelete(OperationsAction):
    """Delete a Slurm reservation through slurmrestd, REST v0.0.43+ (slurmdeploy.slurm.operations)."""

    def run(self, reservation):
        return self.call("delete_reservation", reservation)
