from lib.ops import OperationsAction


class ReservationCreate(OperationsAction):
    """Create a reservation (slurmdeploy.slurm.operations)."""

    def run(self, fields):
        return self.call("create_reservation", fields)
