from lib.ops import OperationsAction


class ReservationList(OperationsAction):
    """Every Slurm reservation record (GET /reservations) (slurmdeploy.slurm.operations)."""

    def run(self):
        return self.call("list_reservations")
