from lib.ops import OperationsAction


class ReservationDelete(OperationsAction):
    """Delete a reservation (REST v0.0.43+, Slurm 25.05+: fails with that reason on every version this pack speaks) (slurmdeploy.slurm.operations)."""

    def run(self, reservation):
        return self.call("delete_reservation", reservation)
