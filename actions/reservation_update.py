from lib.ops import OperationsAction


class ReservationUpdate(OperationsAction):
    """Update a reservation (REST v0.0.43+, Slurm 25.05+: fails with that reason on every version this pack speaks) (slurmdeploy.slurm.operations)."""

    def run(self, reservation, fields):
        return self.call("update_reservation", reservation, fields)
