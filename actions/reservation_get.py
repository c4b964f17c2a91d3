from lib.ops import OperationsAction


class ReservationGet(OperationsAction):
    """One Slurm reservation record (slurmdeploy.slurm.operations)."""

    def run(self, reservation):
        return self.call("get_reservation", reservation)
