from pepperpy.plugins import ResourceMixin, PepperpyPlugin

class ResourcePlugin(PepperpyPlugin, ResourceMixin):
    async def initialize(self):
        if self.initialized:
            return
        self.db = await self.get_resource("database", factory=self.create_db_connection, cleanup=self.close_db_connection)
        self.initialized = True
    async def create_db_connection(self):
        self.logger.info("Creating DB connection")
        return {"connection": "db://example"}
    async def close_db_connection(self, db):
        self.logger.info("Closing DB connection")
