"""The day on PostgreSQL shared by several `cuikuan worker` processes, on Procrastinate."""
