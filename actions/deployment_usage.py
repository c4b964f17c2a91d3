from lib.accounting import AccountingAction


class DeploymentUsage(AccountingAction):
    """A deployment's own jobs' accounting records (slurmdeploy.accounted.deployment_usage)."""

    def run(self, key, start_time="now-30d", end_time=None):
        from slurmdeploy.accounted import deployment_usage
        from slurmdeploy.configdb import ConfigDB

        def usage():
            return deployment_usage(ConfigDB.from_settings(self._settings()), self.accounting,
                                    self.accounting.client.user_name, key, start_time, end_time)
        return self.call(usage)
