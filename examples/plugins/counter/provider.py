"""The plugin-system document's state persistence example, as written there (plus the import it leaves out)."""

from pepperpy.plugins import PepperpyPlugin, persistent_plugin


@persistent_plugin
class MyPlugin(PepperpyPlugin):
    # State will be automatically persisted
    counter: int = 0

    async def increment(self):
        self.counter += 1
        # Counter will be saved between restarts
